-- wrk script: POST a chat completion (or, with BENCH_API=responses, a Responses request; with
-- BENCH_API=messages, an Anthropic Messages request; with
-- BENCH_VARY=1, a different prompt each time); prints request count, p50/p99 latency (us) and errors as JSON.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
local stream = os.getenv("BENCH_STREAM") == "1"
local words = {}
for i = 1, 60 do words[i] = "word" .. i end
local prompt = os.getenv("BENCH_PROMPT") or table.concat(words, " ")  -- no quotes or backslashes
local model = os.getenv("BENCH_MODEL") or "bench-model"
if os.getenv("BENCH_API") == "responses" then  -- the same request, as OpenAI's Responses API
  wrk.body = '{"model": "' .. model .. '", "input": "' .. prompt .. '", "max_output_tokens": 16' ..
    (stream and ', "stream": true' or '') .. '}'
elseif os.getenv("BENCH_API") == "messages" then  -- the same request, as Anthropic's Messages API
  wrk.headers["anthropic-version"] = "2023-06-01"
  wrk.body = '{"model": "' .. model .. '", "max_tokens": 16, "messages": [{"role": "user", "content": "' .. prompt .. '"}]' ..
    (stream and ', "stream": true' or '') .. '}'
else
  wrk.body = '{"model": "' .. model .. '", "messages": [{"role": "user", "content": "' .. prompt .. '"}], "max_tokens": 16' ..
    (stream and ', "stream": true' or '') .. '}'
end

-- BENCH_VARY=1: every request's prompt ends with its own number, so that no two texts are the
-- same (a cache of whole texts never answers).
if os.getenv("BENCH_VARY") == "1" then
  local head, tail = wrk.body:match('^(.-)(" *%}%], .*)$')
  local n = (os.time() % 100000) * 1000000  -- runs a second apart (warm-up, run) never repeat
  request = function()
    n = n + 1
    return wrk.format(nil, nil, nil, head .. " Reference " .. n .. "." .. tail)
  end
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p95_us": %d, "p99_us": %d, "errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
