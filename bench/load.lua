-- wrk script for bench/run.py: posts GraphQL documents to /graphql, each with a bearer token.
--
--   wrk -t T -c C -d D --latency -s bench/load.lua URL -- TOKENS MODE THREADS RETRY_PCT KEY_PREFIX
--
-- TOKENS      file with one bearer token per line (line i = user bench-u<i>)
-- MODE        complete: each request is a NEW user's step-1 completion (a fresh token)
--             mix:      as complete, but RETRY_PCT % of requests resend an earlier request's
--                       exact body and token (same idempotency key: must replay)
--             read:     the myOnboardingProgress query, cycling over the tokens
-- THREADS     wrk's -t, so that each thread takes a disjoint slice of TOKENS
-- RETRY_PCT   percentage of retries in mix mode
-- KEY_PREFIX  idempotency key prefix (keys are KEY_PREFIX-key-<line number>)
--
-- done() prints one line "BENCH_JSON {...}" (throughput, latency percentiles, errors and
-- the response checks) and up to one "BENCH_SAMPLE ..." line per thread with a bad body.

local MUTATION = "mutation($input: CompleteOnboardingStepInput!) { completeOnboardingStep("
  .. "input: $input) { __typename ... on CompleteOnboardingStepSuccess { replayed progress "
  .. "{ nextStep } analytics { status event { id kpiId occurredAt } } } ... on UserError "
  .. "{ code message } } }"
local QUERY = "query { myOnboardingProgress { completedSteps nextStep totalSteps isComplete } }"
local RING = 1024      -- originals remembered for retries
local MIN_AGE = 16     -- a retry resends a request sent at least this many requests earlier

-- main state: keep the threads so done() can collect their counters
local threads = {}

function setup(thread)
  thread:set("id", #threads)
  table.insert(threads, thread)
end

-- per-thread state (each thread has its own Lua state)
local tokens, first_index = {}, 0
local mode, expect, retry_pct, key_prefix
local cursor, sent_originals = 0, 0
local ring_body, ring_token = {}, {}
local read_body

-- counters read by done() through thread:get
responses, bad_status, bad_body, replayed, retries_sent, exhausted = 0, 0, 0, 0, 0, 0
sample = nil

function init(args)
  local path = args[1]
  mode = args[2] or "complete"
  local nthreads = tonumber(args[3] or "1")
  retry_pct = tonumber(args[4] or "0")
  key_prefix = args[5] or "bench"
  local total = 0
  for _ in io.lines(path) do total = total + 1 end
  local per = math.floor(total / nthreads)
  local lo, hi = id * per + 1, (id + 1) * per
  local n = 0
  for line in io.lines(path) do
    n = n + 1
    if n >= lo and n <= hi then tokens[#tokens + 1] = line end
  end
  first_index = lo - 1
  if mode == "read" then
    expect = '"myOnboardingProgress":{'
    read_body = '{"query":"' .. QUERY .. '"}'
  else
    expect = '"__typename":"CompleteOnboardingStepSuccess"'
  end
  math.randomseed(12345 + id)
end

local function post(token, body)
  return wrk.format("POST", "/graphql", {
    ["Content-Type"] = "application/json",
    ["Authorization"] = "Bearer " .. token,
  }, body)
end

local function mutation_body(index)
  return '{"query":"' .. MUTATION .. '","variables":{"input":{"step":1,"idempotencyKey":"'
    .. key_prefix .. "-key-" .. string.format("%012d", index)
    .. '","source":"web","metadata":{"displayName":"Bench user","role":"engineer"}}}}'
end

function request()
  if mode == "read" then
    cursor = cursor % #tokens + 1
    return post(tokens[cursor], read_body)
  end
  if mode == "mix" and sent_originals > MIN_AGE and math.random() * 100 < retry_pct then
    local span = math.min(sent_originals, RING) - MIN_AGE
    local back = MIN_AGE + math.random(0, span - 1)
    local slot = (sent_originals - back) % RING
    retries_sent = retries_sent + 1
    return post(ring_token[slot], ring_body[slot])
  end
  if cursor >= #tokens then
    exhausted = exhausted + 1  -- more requests than tokens: these are replays, not new users
    cursor = 0
  end
  cursor = cursor + 1
  local token, body = tokens[cursor], mutation_body(first_index + cursor)
  local slot = sent_originals % RING
  ring_token[slot], ring_body[slot] = token, body
  sent_originals = sent_originals + 1
  return post(token, body)
end

function response(status, headers, body)
  responses = responses + 1
  if status ~= 200 then
    bad_status = bad_status + 1
    if sample == nil then sample = status .. " " .. string.sub(body or "", 1, 300) end
  elseif string.find(body, expect, 1, true) == nil or string.find(body, '"errors"', 1, true) then
    bad_body = bad_body + 1
    if sample == nil then sample = string.sub(body, 1, 300) end
  elseif string.find(body, '"replayed":%s*true') then
    replayed = replayed + 1
  end
end

function done(summary, latency, requests)
  local totals = { responses = 0, bad_status = 0, bad_body = 0, replayed = 0,
                   retries_sent = 0, exhausted = 0 }
  for _, thread in ipairs(threads) do
    for name, _ in pairs(totals) do
      totals[name] = totals[name] + (thread:get(name) or 0)
    end
    local s = thread:get("sample")
    if s then io.write("BENCH_SAMPLE ", (string.gsub(s, "[\r\n]", " ")), "\n") end
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"bytes":%d,'
      .. '"p50_us":%d,"p95_us":%d,"p99_us":%d,"max_us":%d,"mean_us":%.1f,'
      .. '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
      .. '"responses":%d,"bad_status":%d,"bad_body":%d,"replayed":%d,'
      .. '"retries_sent":%d,"exhausted":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean,
    e.connect, e.read, e.write, e.status, e.timeout,
    totals.responses, totals.bad_status, totals.bad_body, totals.replayed,
    totals.retries_sent, totals.exhausted))
end
