-- Stands in for RQ's scheduler while none is running: moves scheduled jobs that are due to the
-- queue, as the scheduler would, atomically and only when no scheduler holds the queue's lock
-- with a fresh heartbeat. KEYS[1] = the scheduler lock, KEYS[2] = the scheduled registry,
-- KEYS[3] = the queue; ARGV[1] = now (seconds since the epoch, the registry's scores),
-- ARGV[2] = the job key prefix, ARGV[3] = the time (RQ's format), ARGV[4] = at most this many,
-- ARGV[5] = the scheduler record prefix, ARGV[6] = the oldest heartbeat still fresh (RQ's
-- format, which sorts as text). Returns -1 when a scheduler runs, else how many it moved.
-- FIELD, SCHEDULER_FIELD, STATUS: RQ's record fields and status words, from rq_edge.LUA_NAMES.
local holder = redis.call('GET', KEYS[1])
if holder then
  local beat = redis.call('HGET', ARGV[5] .. holder, SCHEDULER_FIELD.LAST_HEARTBEAT)
  if beat and beat >= ARGV[6] then return -1 end
end
local ids = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[4]))
local moved = 0
for _, id in ipairs(ids) do
  redis.call('ZREM', KEYS[2], id)
  local key = ARGV[2] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, FIELD.STATUS, STATUS.QUEUED, FIELD.ENQUEUED_AT, ARGV[3])
    redis.call('RPUSH', KEYS[3], id)
    moved = moved + 1
  end
end
return moved
