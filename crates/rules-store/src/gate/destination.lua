-- Per-destination (host) circuit breaker and rate limit, shared by all workers.
-- KEYS: 1 breaker hash {failures, open_until}, 2 probe flag, 3 rate counter (this second)
-- ARGV: 1 mode: "acquire" | "success" | "failure"; 2 failures that open the breaker;
--       3 cool-off ms; 4 requests per second (0: unlimited); 5 the failure's cause
-- acquire returns {verdict, wait_ms, last_error}: verdict 1 go, 2 go as the probe
-- after a cool-off, 0 circuit open (fail fast; last_error is the last real cause),
-- 3 rate limited (retry after wait_ms), 4 another call is probing (ask again within
-- wait_ms: the probe's answer closes or reopens the breaker). failure returns {1 if it opened the
-- breaker now else 0, 0, ""}.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local mode = ARGV[1]
local threshold = tonumber(ARGV[2])
local cooloff = tonumber(ARGV[3])

if mode == 'acquire' then
  local verdict = 1
  local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
  if open_until > 0 then
    local cause = redis.call('HGET', KEYS[1], 'last_error') or ''
    if now < open_until then
      return {0, open_until - now, cause}
    end
    -- Cool-off over: exactly one call probes the destination.
    if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', cooloff) then
      return {4, math.max(redis.call('PTTL', KEYS[2]), 1), cause}
    end
    verdict = 2
  end
  local limit = tonumber(ARGV[4])
  if limit > 0 then
    local n = redis.call('INCR', KEYS[3])
    if n == 1 then
      redis.call('PEXPIRE', KEYS[3], 2000)
    end
    if n > limit then
      return {3, 1000 - (now % 1000), ''}
    end
  end
  return {verdict, 0, ''}
elseif mode == 'success' then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {1, 0, ''}
else
  local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
  redis.call('HSET', KEYS[1], 'last_error', ARGV[5])
  local probing = redis.call('EXISTS', KEYS[2]) == 1
  local opened = 0
  if failures >= threshold or probing then
    local was_open = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
    if was_open <= now then
      opened = 1
    end
    redis.call('HSET', KEYS[1], 'open_until', now + cooloff)
    redis.call('DEL', KEYS[2])
  end
  redis.call('PEXPIRE', KEYS[1], cooloff * 10 + 60000)
  return {opened, 0, ''}
end
