-- Deletes the job records of taken jobs just finished (ARGV[5..]) that are still this worker's
-- (a second copy of a job, taken by another worker meanwhile, is that worker's to finish), then
-- pops up to ARGV[3] ids from the head of the queue and marks each job started by this worker
-- (ARGV[2]) at ARGV[4], atomically. An id whose job record is gone is dropped (RQ does the same
-- when it dequeues one).
-- FIELD, SCHEDULER_FIELD, STATUS: RQ's record fields and status words, from rq_edge.LUA_NAMES.
for i = 5, #ARGV do
  local finished = ARGV[1] .. ARGV[i]
  if redis.call('HGET', finished, FIELD.WORKER_NAME) == ARGV[2] then redis.call('DEL', finished) end
end
local taken = {}
local wanted = tonumber(ARGV[3])
local popped = 0
while #taken < wanted and popped < wanted + 10 do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  popped = popped + 1
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, FIELD.STATUS, STATUS.STARTED, FIELD.WORKER_NAME, ARGV[2], FIELD.STARTED_AT, ARGV[4])
    taken[#taken + 1] = id
  end
end
return taken
