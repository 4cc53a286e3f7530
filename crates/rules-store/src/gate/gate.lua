-- The gate of one (rule, event) pair: decision memory, threshold, cooldown and
-- staleness, atomically, on event time. rules_core::simulate is the same algorithm
-- in Rust (backtests); crates/rules-store/tests/gate_model.rs holds the two equal.
-- A pair sends only the keys and arguments its rule uses; a rule with neither
-- threshold nor cooldown does not come here at all: gate/memory.rs decides it with
-- one SET NX GET on the same memory, in the same format.
-- KEYS: 1 decision memory; then, when ARGV 6 > 0, the threshold's two keys
--       (events: sorted set, score = event time; state: hash r=last firing time,
--       l=newest counted time); then, when ARGV 7 > 0, the cooldown's two keys
--       (cooldown: hash s=start, h=holder, k=key value JSON; its index)
-- ARGV: 1 event id, 2 token (the stream entry), 3 memory ttl ms, 4 "1" for a dry run
--       (decide, change nothing), 5 "1" when every action would be skipped as stale,
--       6 threshold count (0: none), 7 cooldown ms (0: none), 8 event time ms,
--       9 grace ms state is kept beyond its window or cooldown; then the
--       threshold's window ms when it has one; then the cooldown's scope (member of
--       the index) and key value as JSON ("" for none) when it has one
-- Returns {code, detail, progress} (rules_core::Decision::code): 0 execute;
-- 1 suppressed (detail: ms of the cooldown left); 2 below threshold (detail: count);
-- 3 duplicate (another entry brought this event); 4 skip (every action stale).
-- progress: events counted toward the threshold, this one included (0: none).
local dry = ARGV[4] == '1'
local stale = ARGV[5] == '1'

-- Decision memory: the decision for (rule, event) is taken once; the entry that
-- brought it gets it again on every redelivery, another entry is a duplicate.
local memo = redis.call('GET', KEYS[1])
if memo then
  local token, code, detail, progress = string.match(memo, '^(.*)|(%-?%d+)|(%-?%d+)|(%-?%d+)$')
  if dry or token ~= ARGV[2] then
    return {3, 0, 0}
  end
  return {tonumber(code), tonumber(detail), tonumber(progress)}
end

local function decided(code, detail, progress)
  if not dry then
    redis.call('SET', KEYS[1], ARGV[2] .. '|' .. code .. '|' .. detail .. '|' .. progress,
      'PX', ARGV[3])
  end
  return {code, detail, progress}
end

local count = tonumber(ARGV[6])
local cooldown = tonumber(ARGV[7])
local at = tonumber(ARGV[8])
local grace = tonumber(ARGV[9])
local key, arg = 2, 10

-- Threshold: distinct events in (t - window, t]; the one reaching count fires and
-- clears what it counted. Events older than a window before the newest counted
-- are forgotten; one older than the last firing counts toward nothing.
local progress = 0
if count > 0 then
  local events, state = KEYS[key], KEYS[key + 1]
  local window = tonumber(ARGV[arg])
  key, arg = key + 2, arg + 1
  local reset = tonumber(redis.call('HGET', state, 'r'))
  if reset and at < reset then
    return decided(2, 0, 0)
  end
  local latest = tonumber(redis.call('HGET', state, 'l'))
  if not latest or latest < at then
    latest = at
  end
  local floor = latest - window
  progress = redis.call('ZCOUNT', events, '(' .. floor, at)
  if not redis.call('ZSCORE', events, ARGV[1]) then
    progress = progress + 1
  end
  if not dry then
    redis.call('ZADD', events, 'NX', at, ARGV[1])
    redis.call('ZREMRANGEBYSCORE', events, '-inf', floor)
    redis.call('HSET', state, 'l', latest)
    redis.call('PEXPIRE', events, window + grace)
    redis.call('PEXPIRE', state, window + grace)
  end
  if progress < count then
    return decided(2, progress, progress)
  end
  if not dry then
    if not reset or reset < at then
      redis.call('HSET', state, 'r', at)
    end
    redis.call('ZREMRANGEBYSCORE', events, '-inf', at)
  end
end

-- Cooldown: [start, start + cooldown) of the execution that took it, with the rule's
-- current cooldown. A match older than the start is suppressed too: out-of-order
-- events never put two executions inside one cooldown.
if cooldown > 0 then
  local running_key, index = KEYS[key], KEYS[key + 1]
  local scope, key_json = ARGV[arg], ARGV[arg + 1]
  local take = true
  local running = redis.call('HMGET', running_key, 's', 'h')
  local start = tonumber(running[1])
  if start then
    local finish = start + cooldown
    if running[2] == ARGV[1] then
      take = false
    elseif at < finish then
      return decided(1, finish - at, progress)
    end
  end
  if take and not stale and not dry then
    -- Every field the hash has (s, h, k) is written: no DEL first.
    redis.call('HSET', running_key, 's', at, 'h', ARGV[1], 'k', key_json)
    redis.call('PEXPIRE', running_key, cooldown + grace)
    redis.call('ZREMRANGEBYSCORE', index, '-inf', '(' .. (at - cooldown - grace))
    redis.call('ZADD', index, at, scope)
    if redis.call('PTTL', index) < cooldown + grace then
      redis.call('PEXPIRE', index, cooldown + grace)
    end
  end
end
if stale then
  return decided(4, 0, progress)
end
return decided(0, 0, progress)
