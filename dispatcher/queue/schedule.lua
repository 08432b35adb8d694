-- Schedules one delivery's job unless its record already exists, atomically (as enqueue.lua
-- enqueues): a delivery never has two jobs.
-- KEYS[1] = the job's record, KEYS[2] = the queue's scheduled registry; ARGV[1] = the job id,
-- ARGV[2] = the time to run it (Unix seconds), ARGV[3..] = the record's field, value pairs.
-- Returns 1 when it scheduled the job, 0 when one was there.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[1])
return 1
