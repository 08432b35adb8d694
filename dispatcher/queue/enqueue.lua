-- Enqueues one delivery's job unless its record already exists (a job for this request_id is
-- queued, scheduled or running, or reconcile queued it a moment ago), atomically: a delivery
-- never has two jobs, however a dispatch and reconcile race.
-- KEYS[1] = the job's record, KEYS[2] = the queue; ARGV[1] = the job id, ARGV[2..] = the
-- record's field, value pairs. Returns 1 when it enqueued the job, 0 when one was there.
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 2))
redis.call('RPUSH', KEYS[2], ARGV[1])
return 1
