-- Deletes the job records of taken jobs just finished (ARGV[7..]) that are still this worker's
-- (a second copy of a job, taken by another worker meanwhile, is that worker's to finish), then
-- pops up to ARGV[3] ids from the head of the queue and marks each job started by this worker
-- (ARGV[2]) at ARGV[4], atomically. An id whose job record is gone is dropped (RQ does the same
-- when it dequeues one). With ARGV[5] a field name (a worker that traces), each taken id is
-- followed by its record's ARGV[5] and ARGV[6] fields (its trace contexts, '' when unset).
-- FIELD, SCHEDULER_FIELD, STATUS: RQ's record fields and status words, from rq_edge.LUA_NAMES.
for i = 7, #ARGV do
  local finished = ARGV[1] .. ARGV[i]
  if redis.call('HGET', finished, FIELD.WORKER_NAME) == ARGV[2] then redis.call('DEL', finished) end
end
local taken = {}
local wanted = tonumber(ARGV[3])
local got = 0
local popped = 0
while got < wanted and popped < wanted + 10 do
  local id = redis.call('LPOP', KEYS[1])
  if not id then break end
  popped = popped + 1
  local key = ARGV[1] .. id
  if redis.call('EXISTS', key) == 1 then
    redis.call('HSET', key, FIELD.STATUS, STATUS.STARTED, FIELD.WORKER_NAME, ARGV[2], FIELD.STARTED_AT, ARGV[4])
    taken[#taken + 1] = id
    got = got + 1
    if ARGV[5] ~= '' then
      local contexts = redis.call('HMGET', key, ARGV[5], ARGV[6])
      taken[#taken + 1] = contexts[1] or ''
      taken[#taken + 1] = contexts[2] or ''
    end
  end
end
return taken
