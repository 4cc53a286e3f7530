-- The gate of one (rule, event) pair: decision memory, threshold, cooldown and
-- staleness, atomically, on event time. rules_core::simulate is the same algorithm
-- in Rust (backtests); crates/rules-store/tests/gate_model.rs holds the two equal.
-- KEYS: 1 decision memory, 2 cooldown (hash s=start, h=holder, k=key value JSON),
--       3 cooldown index, 4 threshold events (sorted set, score = event time),
--       5 threshold state (hash r=last firing time, l=newest counted time)
-- ARGV: 1 event id, 2 token (the stream entry), 3 memory ttl ms, 4 threshold count
--       (0: none), 5 threshold window ms, 6 cooldown ms (0: none), 7 cooldown scope
--       (member of the index), 8 "1" for a dry run (decide, change nothing),
--       9 event time ms, 10 "1" when every action would be skipped as stale,
--       11 the key value as JSON ("" for none), 12 grace ms state is kept beyond its
--       window or cooldown
-- Returns {code, detail, progress} (rules_core::Decision::code): 0 execute;
-- 1 suppressed (detail: ms of the cooldown left); 2 below threshold (detail: count);
-- 3 duplicate (another entry brought this event); 4 skip (every action stale).
-- progress: events counted toward the threshold, this one included (0: none).
local dry = ARGV[8] == '1'
local at = tonumber(ARGV[9])
local grace = tonumber(ARGV[12])

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

-- Threshold: distinct events in (t - window, t]; the one reaching count fires and
-- clears what it counted. Events older than a window before the newest counted
-- are forgotten; one older than the last firing counts toward nothing.
local count = tonumber(ARGV[4])
local progress = 0
if count > 0 then
  local window = tonumber(ARGV[5])
  local reset = tonumber(redis.call('HGET', KEYS[5], 'r'))
  if reset and at < reset then
    return decided(2, 0, 0)
  end
  local latest = tonumber(redis.call('HGET', KEYS[5], 'l'))
  if not latest or latest < at then
    latest = at
  end
  local floor = latest - window
  progress = redis.call('ZCOUNT', KEYS[4], '(' .. floor, at)
  if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
    progress = progress + 1
  end
  if not dry then
    redis.call('ZADD', KEYS[4], 'NX', at, ARGV[1])
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', floor)
    redis.call('HSET', KEYS[5], 'l', latest)
    redis.call('PEXPIRE', KEYS[4], window + grace)
    redis.call('PEXPIRE', KEYS[5], window + grace)
  end
  if progress < count then
    return decided(2, progress, progress)
  end
  if not dry then
    if not reset or reset < at then
      redis.call('HSET', KEYS[5], 'r', at)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', at)
  end
end

-- Cooldown: [start, start + cooldown) of the execution that took it, with the rule's
-- current cooldown. A match older than the start is suppressed too: out-of-order
-- events never put two executions inside one cooldown.
local cooldown = tonumber(ARGV[6])
local stale = ARGV[10] == '1'
if cooldown > 0 then
  local take = true
  local running = redis.call('HMGET', KEYS[2], 's', 'h')
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
    redis.call('DEL', KEYS[2])
    redis.call('HSET', KEYS[2], 's', at, 'h', ARGV[1], 'k', ARGV[11])
    redis.call('PEXPIRE', KEYS[2], cooldown + grace)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', '(' .. (at - cooldown - grace))
    redis.call('ZADD', KEYS[3], at, ARGV[7])
    if redis.call('PTTL', KEYS[3]) < cooldown + grace then
      redis.call('PEXPIRE', KEYS[3], cooldown + grace)
    end
  end
end
if stale then
  return decided(4, 0, progress)
end
return decided(0, 0, progress)
