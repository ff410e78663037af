-- wrk script: POST a chat completion (or, with BENCH_API=responses, a Responses request); prints request count, p50/p99 latency (us) and errors as JSON.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("BENCH_KEY")
if key and key ~= "" then wrk.headers["Authorization"] = "Bearer " .. key end
local stream = os.getenv("BENCH_STREAM") == "1"
local words = {}
for i = 1, 60 do words[i] = "word" .. i end
local prompt = table.concat(words, " ")
local model = os.getenv("BENCH_MODEL") or "bench-model"
if os.getenv("BENCH_API") == "responses" then  -- the same request, as OpenAI's Responses API
  wrk.body = '{"model": "' .. model .. '", "input": "' .. prompt .. '", "max_output_tokens": 16' ..
    (stream and ', "stream": true' or '') .. '}'
else
  wrk.body = '{"model": "' .. model .. '", "messages": [{"role": "user", "content": "' .. prompt .. '"}], "max_tokens": 16' ..
    (stream and ', "stream": true' or '') .. '}'
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, "errors": %d, "status_errors": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.connect + e.read + e.write + e.timeout, e.status))
end
