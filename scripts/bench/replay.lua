-- wrk script of scripts/ingestbench: replays prepared request bodies, each once.
-- BENCH_BODIES names a file written by `ingestbench bodies|pushgateway`: per request a line
-- "<length> <credential-or-instance>" then the body's bytes. Thread k of n sends records k, k+n, …
-- BENCH_KIND is "collector" (POST /api/v1/ingest, gzip, bearer credential) or "pushgateway"
-- (POST /metrics/job/bench/instance/<instance>, Prometheus text).
-- done() prints one line: RESULT requests=… seconds=… p50_ms=… p99_ms=… non2xx=… errors=… wrapped=…

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local n = tonumber(os.getenv("BENCH_THREADS") or "2")
  local kind = os.getenv("BENCH_KIND") or "collector"
  local file = assert(io.open(os.getenv("BENCH_BODIES"), "rb"))
  requests = {}
  index = 0
  wrapped = 0
  local record = 0
  while true do
    local header = file:read("*l")
    if not header then break end
    local length, who = header:match("^(%d+) (%S+)$")
    local body = file:read(tonumber(length))
    if record % n == id then
      if kind == "collector" then
        table.insert(requests, wrk.format("POST", "/api/v1/ingest", {
          ["Content-Type"] = "application/json",
          ["Content-Encoding"] = "gzip",
          ["Authorization"] = "Bearer " .. who,
        }, body))
      else
        table.insert(requests, wrk.format("POST", "/metrics/job/bench/instance/" .. who, {
          ["Content-Type"] = "text/plain; version=0.0.4",
        }, body))
      end
    end
    record = record + 1
  end
  file:close()
end

function request()
  index = index + 1
  if index > #requests then
    index = 1
    wrapped = wrapped + 1
  end
  return requests[index]
end

function done(summary, latency, requests)
  local wraps = 0
  for _, thread in ipairs(threads) do
    wraps = wraps + (thread:get("wrapped") or 0)
  end
  local errors = summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f p50_ms=%.2f p99_ms=%.2f max_ms=%.2f non2xx=%d errors=%d wrapped=%d\n",
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    latency.max / 1000, summary.errors.status, errors, wraps))
end
