-- One lead.created per request, each with its own Idempotency-Key (no duplicates to dedupe).
local counter = 0
local tid = 0
local run = os.getenv("BENCH_RUN") or "0"
local apikey = os.getenv("BENCH_API_KEY") or ""
local body = '{"type":"lead.created","data":{"name":"Maria Souza","phone":"+55 11 98765-4321",' ..
             '"email":"maria@example.com","origin":"site"},"metadata":{"utm":{"source":"google","campaign":"bench"}}}'

setup = function(thread)
  thread:set("tid", tid)
  tid = tid + 1
end

request = function()
  counter = counter + 1
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-API-Key"] = apikey
  headers["Idempotency-Key"] = "b" .. run .. "-" .. tid .. "-" .. counter
  return wrk.format("POST", "/v1/events", headers, body)
end
