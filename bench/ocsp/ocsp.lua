-- wrk script of the OCSP load test: sends prepared requests in turn, every
-- connection always sending (the openssl responder hangs on connections
-- closed without a request, STACK.md pitfall 11).
--
--   wrk -s ocsp.lua URL -- FILE METHOD
--
-- FILE: one request per line, hex DER (POST) or "/<url-encoded base64>" (GET).
-- METHOD: POST or GET. Prints one "RESULT key=value ..." line at the end.

local requests = {}
local counter = 0

function init(args)
  local file, method = args[1], args[2] or "POST"
  for line in io.lines(file) do
    if #line > 0 then
      if method == "GET" then
        requests[#requests + 1] = wrk.format("GET", line)
      else
        local body = line:gsub("..", function(h) return string.char(tonumber(h, 16)) end)
        requests[#requests + 1] = wrk.format("POST", "/", {["Content-Type"] = "application/ocsp-request"}, body)
      end
    end
  end
  -- Threads start at different places of the list.
  counter = math.random(#requests)
end

function request()
  counter = counter + 1
  return requests[(counter % #requests) + 1]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "RESULT requests=%d seconds=%.3f rps=%.1f p50_us=%d p90_us=%d p99_us=%d p999_us=%d max_us=%d connect_err=%d read_err=%d write_err=%d timeouts=%d non2xx=%d\n",
    summary.requests, summary.duration / 1e6, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency:percentile(99.9), latency.max,
    e.connect, e.read, e.write, e.timeout, e.status))
end
