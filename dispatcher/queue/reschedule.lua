-- Schedules the next look at a job this worker took into a batch, atomically. A second copy of
-- a job (RQ's scheduler and a mover racing put it in the queue twice) may be taken by another
-- worker meanwhile; the worker that claimed the delivery decides its retry (ARGV[5] = '1': the
-- job is scheduled whoever holds its record, and becomes this worker's, so the other drops
-- nothing of it), and a worker whose claim was refused (its delivery waits behind its ordering
-- key's head) schedules the job only while it is still the one holding it: its wait never
-- pushes back a retry another worker scheduled. KEYS[1] = the job's record, KEYS[2] = the
-- scheduled registry, KEYS[3] = RQ's set of queues; ARGV[1] = the job id, ARGV[2] = this
-- worker, ARGV[3] = when (the registry's score), ARGV[4] = the queue's key. Returns 1 when
-- scheduled, 0 when the job is another's, -1 when its record is gone.
-- FIELD, SCHEDULER_FIELD, STATUS: RQ's record fields and status words, from rq_edge.LUA_NAMES.
local fields = redis.call('HMGET', KEYS[1], FIELD.STATUS, FIELD.WORKER_NAME)
if not fields[1] then return -1 end
if ARGV[5] ~= '1' and (fields[1] ~= STATUS.STARTED or fields[2] ~= ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], FIELD.STATUS, STATUS.SCHEDULED, FIELD.WORKER_NAME, ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
redis.call('SADD', KEYS[3], ARGV[4])
return 1
