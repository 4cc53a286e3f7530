-- The gate of one (rule, event) pair: claim, threshold, cooldown, atomically.
-- KEYS: 1 claim, 2 cooldown, 3 cooldown index, 4 threshold set, 5 threshold fired
-- ARGV: 1 event id, 2 claim token (the stream entry), 3 claim ttl ms,
--       4 threshold count (0: none), 5 threshold window ms, 6 cooldown ms (0: none),
--       7 cooldown scope (member of the index), 8 "1" for a dry run: decide as the
--       worker would, change nothing (the API's live dry run)
-- Returns {code, detail, progress}: code 0 execute; 1 suppressed by cooldown (detail:
-- ms left); 2 below threshold (detail: count so far); 3 duplicate (another entry owns
-- it). progress: events counted toward the threshold, this one included (0: none).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local dry = ARGV[8] == '1'

-- Claim: one stream entry is responsible for (rule, event). Its own redelivery
-- passes; a second entry carrying the same event id is a duplicate.
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[2] then
  return {3, 0, 0}
end
if not holder and not dry then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
end

-- Threshold: count distinct events in the sliding window; fire on the Nth, then
-- start again. The firing event is remembered so its redelivery fires again.
local count = tonumber(ARGV[4])
local progress = 0
if count > 0 then
  local window = tonumber(ARGV[5])
  if redis.call('GET', KEYS[5]) == ARGV[1] then
    progress = count
  elseif dry then
    progress = redis.call('ZCOUNT', KEYS[4], '(' .. (now - window), '+inf')
    if not redis.call('ZSCORE', KEYS[4], ARGV[1]) then
      progress = progress + 1
    end
    if progress < count then
      return {2, progress, progress}
    end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[4], '-inf', now - window)
    redis.call('ZADD', KEYS[4], 'NX', now, ARGV[1])
    progress = redis.call('ZCARD', KEYS[4])
    if progress < count then
      redis.call('PEXPIRE', KEYS[4], window)
      return {2, progress, progress}
    end
    redis.call('DEL', KEYS[4])
    redis.call('SET', KEYS[5], ARGV[1], 'PX', window)
  end
end

-- Cooldown: taken by the first execution; the event that took it passes again.
local cooldown = tonumber(ARGV[6])
if cooldown > 0 then
  local current = redis.call('GET', KEYS[2])
  if current and current ~= ARGV[1] then
    return {1, redis.call('PTTL', KEYS[2]), progress}
  end
  if not current and not dry then
    redis.call('SET', KEYS[2], ARGV[1], 'PX', cooldown)
    redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
    redis.call('ZADD', KEYS[3], now + cooldown, ARGV[7])
    if redis.call('PTTL', KEYS[3]) < cooldown then
      redis.call('PEXPIRE', KEYS[3], cooldown)
    end
  end
end
return {0, 0, progress}
