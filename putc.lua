-- wrk script: PUT objects of BENCH_SIZE bytes under fresh names (one per request), spread over
-- 64 partitions, to an object server's backend API. Identical for Swift and Swiftlet.
local size = tonumber(os.getenv("BENCH_SIZE") or "4096")
local device = os.getenv("BENCH_DEVICE") or "objbench"
local prefix = os.getenv("BENCH_PREFIX") or "p"
local body = string.rep("x", size)
local threads = 0
local n = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

function request()
  n = n + 1
  local path = string.format("/%s/%d/AUTH_bench/c/%s-%d-%d", device, n % 64, prefix, tid, n)
  local headers = {
    ["X-Timestamp"] = string.format("%d.%05d", os.time(), n % 100000),
    ["Content-Type"] = "application/octet-stream", ["X-Container-Host"] = os.getenv("CH"), ["X-Container-Device"] = "d1", ["X-Container-Partition"] = "7",
  }
  return wrk.format("PUT", path, headers, body)
end
