"""Lua sources of the scripts that change the waiting room and the chat.

Every change of a visit's state and of a clinic's queue happens inside one of
these scripts, so check-in, triage, admit, leave and end are atomic even with
several nodes. Each transition script receives the legal ``{from: to}`` rows of
its action (from :data:`telemed.visits.TRANSITIONS`) as JSON in ARGV[1] and the
time in seconds in ARGV[2], and returns ``{status, ...}`` where status is
``ok``, ``not_found`` or ``conflict`` (followed by the current state).

Scripts that pick a patient (admit next) and the position pusher read visit
hashes whose names they build from a prefix: fine on one Redis (or Sentinel),
which is what the design runs on; a Redis Cluster would need hash tags per clinic.
"""

from __future__ import annotations

#: Shared helpers prepended to each transition script.
PRELUDE = r"""
local function step(vkey, rules_json)
  local state = redis.call('HGET', vkey, 'state')
  if not state then return nil, {'not_found'} end
  local to = cjson.decode(rules_json)[state]
  if not to then return nil, {'conflict', state} end
  return state, to
end

local function history(hkey, now, from, to, action, by)
  redis.call('RPUSH', hkey, cjson.encode({at = tonumber(now), from = from, to = to, action = action, by = by}))
end

local function score(acuity, seq)
  return tonumber(acuity) * 1e12 + tonumber(seq)
end
"""

#: KEYS: visit, history, queue, seq, version, seen
#: ARGV: rules, now, default_acuity, reason, consent_visit, consent_recording,
#:       consent_version, patient_sub, patient_name
CHECK_IN = PRELUDE + r"""
local from, to = step(KEYS[1], ARGV[1])
if not from then return to end
local seq = redis.call('INCR', KEYS[4])
redis.call('HSET', KEYS[1], 'state', to, 'checked_in_at', ARGV[2], 'seq', seq,
  'reason', ARGV[4], 'consent_visit', ARGV[5], 'consent_recording', ARGV[6],
  'consent_version', ARGV[7], 'patient_sub', ARGV[8], 'patient_name', ARGV[9])
redis.call('ZADD', KEYS[3], score(ARGV[3], seq), redis.call('HGET', KEYS[1], 'id'))
redis.call('ZADD', KEYS[6], math.floor(tonumber(ARGV[2]) * 1000), redis.call('HGET', KEYS[1], 'id'))
history(KEYS[2], ARGV[2], from, to, 'check_in', ARGV[8])
return {'ok', from, to, redis.call('INCR', KEYS[5])}
"""

#: KEYS: visit, history, queue, version
#: ARGV: rules, now, default_acuity, acuity ('' = keep), note ('' = keep), by,
#:       set_note ('1' to set the note even when empty)
TRIAGE = PRELUDE + r"""
local from, to = step(KEYS[1], ARGV[1])
if not from then return to end
if ARGV[4] ~= '' then
  redis.call('HSET', KEYS[1], 'acuity', ARGV[4])
  local seq = redis.call('HGET', KEYS[1], 'seq')
  redis.call('ZADD', KEYS[3], 'XX', score(ARGV[4], seq), redis.call('HGET', KEYS[1], 'id'))
end
if ARGV[7] == '1' then redis.call('HSET', KEYS[1], 'triage_note', ARGV[5]) end
redis.call('HSET', KEYS[1], 'state', to, 'triaged_by', ARGV[6])
history(KEYS[2], ARGV[2], from, to, 'triage', ARGV[6])
return {'ok', from, to, redis.call('INCR', KEYS[4])}
"""

#: KEYS: visit, history, version
#: ARGV: rules, now, doctor ('' = any doctor), by
ROUTE = PRELUDE + r"""
local from, to = step(KEYS[1], ARGV[1])
if not from then return to end
redis.call('HSET', KEYS[1], 'state', to, 'routed_to', ARGV[3])
history(KEYS[2], ARGV[2], from, to, 'route', ARGV[4])
return {'ok', from, to, redis.call('INCR', KEYS[3])}
"""

#: KEYS: queue, version, doctor_visits, seen, in_visit
#: ARGV: rules, now, doctor, doctor_name, chosen visit ('' = next), visit key
#:       prefix, history key prefix, key suffix ('}')
ADMIT = PRELUDE + r"""
local doctor = ARGV[3]
local vid = nil
if ARGV[5] ~= '' then
  if not redis.call('ZSCORE', KEYS[1], ARGV[5]) then
    local state = redis.call('HGET', ARGV[6] .. ARGV[5] .. ARGV[8], 'state')
    if not state then return {'not_found'} end
    return {'conflict', state}
  end
  vid = ARGV[5]
else
  -- the first patient in order who is routed to this doctor or to nobody
  local start = 0
  while not vid do
    local batch = redis.call('ZRANGE', KEYS[1], start, start + 99)
    if #batch == 0 then return {'empty'} end
    for _, id in ipairs(batch) do
      local routed = redis.call('HGET', ARGV[6] .. id .. ARGV[8], 'routed_to')
      if not routed or routed == '' or routed == doctor then vid = id; break end
    end
    start = start + 100
  end
end
local vkey = ARGV[6] .. vid .. ARGV[8]
local from, to = step(vkey, ARGV[1])
if not from then return to end
redis.call('HSET', vkey, 'state', to, 'doctor', doctor, 'doctor_name', ARGV[4], 'admitted_at', ARGV[2])
redis.call('ZREM', KEYS[1], vid)
redis.call('ZREM', KEYS[4], vid)
redis.call('SADD', KEYS[3], vid)
redis.call('SADD', KEYS[5], vid)
history(ARGV[7] .. vid .. ARGV[8], ARGV[2], from, to, 'admit', doctor)
return {'ok', from, to, redis.call('INCR', KEYS[2]), vid}
"""

#: KEYS: visit, history, queue, version, durations, seen, chat, chat_ids, in_visit, charts pending
#: ARGV: rules, now, end reason, by, ttl after end, max duration samples,
#:       doctor_visits key prefix, only_if_absent_before_ms ('' = always)
END = PRELUDE + r"""
local vid = redis.call('HGET', KEYS[1], 'id')
if ARGV[8] ~= '' and vid then
  local seen = redis.call('ZSCORE', KEYS[6], vid)
  if seen and tonumber(seen) >= tonumber(ARGV[8]) then return {'present'} end
end
local from, to = step(KEYS[1], ARGV[1])
if not from then return to end
redis.call('HSET', KEYS[1], 'state', to, 'ended_at', ARGV[2], 'end_reason', ARGV[3])
redis.call('ZREM', KEYS[3], vid)
redis.call('ZREM', KEYS[6], vid)
if from == 'in_visit' then
  local admitted = tonumber(redis.call('HGET', KEYS[1], 'admitted_at'))
  redis.call('LPUSH', KEYS[5], math.max(0, tonumber(ARGV[2]) - admitted))
  redis.call('LTRIM', KEYS[5], 0, tonumber(ARGV[6]) - 1)
  local doctor = redis.call('HGET', KEYS[1], 'doctor')
  redis.call('SREM', ARGV[7] .. doctor, vid)
  redis.call('SREM', KEYS[9], vid)
end
history(KEYS[2], ARGV[2], from, to, 'end:' .. ARGV[3], ARGV[4])
redis.call('ZADD', KEYS[10], ARGV[2], vid)
for _, k in ipairs({KEYS[1], KEYS[2], KEYS[7], KEYS[8]}) do
  redis.call('EXPIRE', k, tonumber(ARGV[5]))
end
return {'ok', from, to, redis.call('INCR', KEYS[4])}
"""

#: Where some visits stand in a clinic's queue, and what the wait estimate
#: needs: {version, length, doctors on duty, mean visit seconds, rank...}, a rank
#: (0-based) per visit asked for, or -1 for one not queued. A node asks for the
#: patients whose sockets it holds, so each node pushes to its own sockets.
#: KEYS: queue, durations, doctors, version
#: ARGV: now_ms, doctor_ttl_ms, default visit seconds, visit ids...
POSITIONS = r"""
local samples = redis.call('LRANGE', KEYS[2], 0, -1)
local mean = tonumber(ARGV[3])
if #samples > 0 then
  local total = 0
  for _, s in ipairs(samples) do total = total + tonumber(s) end
  mean = total / #samples
end
local doctors = redis.call('ZCOUNT', KEYS[3], tonumber(ARGV[1]) - tonumber(ARGV[2]), '+inf')
-- (mean as a string: Lua numbers become integers in replies)
local out = {redis.call('GET', KEYS[4]) or '0', redis.call('ZCARD', KEYS[1]), doctors, tostring(mean)}
for i = 4, #ARGV do
  out[#out + 1] = redis.call('ZRANK', KEYS[1], ARGV[i]) or -1
end
return out
"""

#: Every queued visit of a clinic, in order, with its hash: {{id, {field, value, ...}}, ...}.
#: One reply instead of one per visit (the staff's queue of a long line).
#: KEYS: queue. ARGV: visit key prefix, key suffix
QUEUE_VISITS = r"""
local out = {}
for i, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  out[i] = {id, redis.call('HGETALL', ARGV[1] .. id .. ARGV[2])}
end
return out
"""

#: KEYS: visit, chat, chat_ids
#: ARGV: client id, sender sub, role, name, text, now, max stream length
CHAT_SEND = r"""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'not_found'} end
local existing = redis.call('HGET', KEYS[3], ARGV[1])
if existing then return {'duplicate', existing} end
if state == 'ended' then return {'conflict', state} end
local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[7], '*',
  'cid', ARGV[1], 'from', ARGV[2], 'role', ARGV[3], 'name', ARGV[4], 'text', ARGV[5], 'ts', ARGV[6])
redis.call('HSET', KEYS[3], ARGV[1], id)
return {'ok', id}
"""

#: Admit one more connection of a token unless it already has ``limit`` live
#: ones (entries not refreshed since ``stale_before`` no longer count: their
#: node died). KEYS: connections of the token. ARGV: sid, now_ms, stale_before_ms, limit, ttl_s
CONNECT = r"""
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[4]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[5]))
return 1
"""


#: Take up to ARGV[3] visits whose chart is due (score <= now) for a lease.
#: KEYS: charts pending. ARGV: now, lease seconds, how many
CLAIM_CHARTS = r"""
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, tonumber(ARGV[3]))
for _, vid in ipairs(due) do
  redis.call('ZADD', KEYS[1], tonumber(ARGV[1]) + tonumber(ARGV[2]), vid)
end
return due
"""
