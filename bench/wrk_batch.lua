-- A batch of BENCH_BATCH cuidador.updated events per request, every event with its own key.
local counter = 0
local tid = 0
local run = os.getenv("BENCH_RUN") or "0"
local apikey = os.getenv("BENCH_API_KEY") or ""
local size = tonumber(os.getenv("BENCH_BATCH") or "500")

setup = function(thread)
  thread:set("tid", tid)
  tid = tid + 1
end

request = function()
  counter = counter + 1
  local items = {}
  local prefix = "k" .. run .. "-" .. tid .. "-" .. counter .. "-"
  for i = 1, size do
    items[i] = '{"type":"cuidador.updated","idempotency_key":"' .. prefix .. i ..
               '","data":{"cuidador_id":"' .. i .. '","status":"ativo"}}'
  end
  local headers = {}
  headers["Content-Type"] = "application/json"
  headers["X-API-Key"] = apikey
  return wrk.format("POST", "/v1/events/batch", headers, '{"events":[' .. table.concat(items, ",") .. ']}')
end
