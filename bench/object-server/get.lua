-- wrk script: GET the BENCH_COUNT objects preloaded as <prefix>-<i> (partition i % 64), round robin.
local device = os.getenv("BENCH_DEVICE") or "objbench"
local prefix = os.getenv("BENCH_PREFIX") or "g"
local count = tonumber(os.getenv("BENCH_COUNT") or "256")
local n = 0

function request()
  n = n + 1
  local i = n % count
  return wrk.format("GET", string.format("/%s/%d/AUTH_bench/c/%s-%d", device, i % 64, prefix, i))
end
