-- wrk script: one request per presigned URL of BENCH_URLS (path+query per line, used in turn,
-- wrapping around), method BENCH_METHOD, PUT bodies of BENCH_SIZE bytes. The same for both servers.
local method = os.getenv("BENCH_METHOD") or "GET"
local size = tonumber(os.getenv("BENCH_SIZE") or "4096")
local body = nil
if method == "PUT" then body = string.rep("x", size) end
local urls = {}
for line in io.lines(os.getenv("BENCH_URLS")) do
  if line ~= "" then urls[#urls + 1] = line end
end
local n = 0
local headers = {}
if method == "PUT" then headers["Content-Type"] = "application/octet-stream" end

function request()
  n = n + 1
  return wrk.format(method, urls[(n - 1) % #urls + 1], headers, body)
end
