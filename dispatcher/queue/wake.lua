-- Moves one delivery's scheduled job to the queue now (the head of its ordering key is final:
-- it need not wait any longer), atomically: if the scheduler moved it meanwhile, nothing
-- happens. KEYS[1] = the job's record, KEYS[2] = the scheduled registry, KEYS[3] = the queue;
-- ARGV[1] = the job id, ARGV[2] = the time (RQ's format). Returns 1 when it moved the job.
-- FIELD, SCHEDULER_FIELD, STATUS: RQ's record fields and status words, from rq_edge.LUA_NAMES.
if redis.call('ZREM', KEYS[2], ARGV[1]) == 0 then return 0 end
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], FIELD.STATUS, STATUS.QUEUED, FIELD.ENQUEUED_AT, ARGV[2])
redis.call('RPUSH', KEYS[3], ARGV[1])
return 1
