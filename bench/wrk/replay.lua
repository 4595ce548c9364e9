-- wrk script for the bench suite: replays precomputed requests, each one once.
--
--   wrk -t T -c C -d D -s bench/wrk/replay.lua http://127.0.0.1:PORT -- REQUEST_FILE
--
-- REQUEST_FILE has one request per line: METHOD \t PATH \t BODY \t Header: value \t ...
-- (bodies are one-line JSON). Thread k of T takes lines k, k+T, k+2T, ... so no two threads send
-- the same request (signed webhooks must each carry a unique webhook-id). A thread that runs out
-- of lines stops and reports it ("exhausted"), rather than sending a request twice.
-- done() prints one line "WRKJSON {...}" with the counts per status class and the latency
-- percentiles, for bench/loadgen.py to parse.

local threads = {}
local counter = 0

function setup(thread)
  thread:set("tid", counter)
  counter = counter + 1
  table.insert(threads, thread)
end

local function split(line, sep)
  local out = {}
  local start = 1
  while true do
    local i = string.find(line, sep, start, true)
    if not i then
      table.insert(out, string.sub(line, start))
      return out
    end
    table.insert(out, string.sub(line, start, i - 1))
    start = i + 1
  end
end

function init(args)
  local path = args[1]
  local nthreads = tonumber(args[2])
  reqs = {}
  local n = 0
  for line in io.lines(path) do
    if n % nthreads == tid then
      local parts = split(line, "\t")
      local headers = {}
      for j = 4, #parts do
        local k, v = string.match(parts[j], "^([^:]+):%s*(.*)$")
        if k then headers[k] = v end
      end
      local body = parts[3]
      if body == "" then body = nil end
      table.insert(reqs, wrk.format(parts[1], parts[2], headers, body))
    end
    n = n + 1
  end
  idx = 0
  sent = 0
  c2xx = 0
  c200 = 0
  cother = 0
  exhausted = 0
end

function request()
  idx = idx + 1
  if idx > #reqs then
    exhausted = 1
    wrk.thread:stop()
    idx = #reqs -- the connection still wants a request; it is never read back
  else
    sent = sent + 1
  end
  return reqs[idx]
end

function response(status, headers, body)
  if status == 200 then c200 = c200 + 1 end
  if status >= 200 and status < 300 then
    c2xx = c2xx + 1
  else
    cother = cother + 1
  end
end

function done(summary, latency, requests)
  local sent_t, c200_t, c2xx_t, cother_t, exhausted_t = 0, 0, 0, 0, 0
  for _, t in ipairs(threads) do
    sent_t = sent_t + t:get("sent")
    c200_t = c200_t + t:get("c200")
    c2xx_t = c2xx_t + t:get("c2xx")
    cother_t = cother_t + t:get("cother")
    exhausted_t = exhausted_t + t:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%d,"duration_us":%d,"sent":%d,"status_200":%d,"status_2xx":%d,"status_other":%d,' ..
    '"exhausted_threads":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"latency_us":{"mean":%.1f,"p50":%d,"p90":%d,"p99":%d,"max":%d}}\n',
    summary.requests, summary.duration, sent_t, c200_t, c2xx_t, cother_t, exhausted_t,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
