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

#: Start of the time-based places in a queue (2026-01-01 UTC, in ms); see CHECK_IN.
PLACE_EPOCH_MS = 1_767_225_600_000

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

-- acuity first, then the place within the level (see CHECK_IN); exact in a
-- double while place < 1e15, i.e. for 31 years of milliseconds from 2026.
local function score(acuity, seq)
  return tonumber(acuity) * 1e15 + tonumber(seq)
end
"""

#: The place within an acuity level is time-based, in thousandths of a
#: millisecond since :data:`PLACE_EPOCH_MS`: an arrival takes
#: max(now's place + 1, the last arrival's + 1), so arrivals stay strictly
#: first-come whatever the nodes' clocks say; a scheduled patient checking in
#: before the appointment takes the appointment's place (ahead of anyone who
#: arrives at or after that time, behind those who arrived before), one on
#: time or late takes their arrival's. Too early (before the visit's
#: check_in_from) is refused: {'too_early', scheduled_at, check_in_from}.
#: KEYS: visit, history, queue, seq (last arrival's place), version, seen,
#:       expected, appointments due
#: ARGV: rules, now, default_acuity, reason, consent_visit, consent_recording,
#:       consent_version, patient_sub, patient_name, place epoch (ms), language,
#:       consent_language
CHECK_IN = PRELUDE + r"""
local from, to = step(KEYS[1], ARGV[1])
if not from then return to end
local now = tonumber(ARGV[2])
local sched = tonumber(redis.call('HGET', KEYS[1], 'scheduled_at') or '')
local opens = tonumber(redis.call('HGET', KEYS[1], 'check_in_from') or '')
if sched and opens and now < opens then
  return {'too_early', string.format('%.17g', sched), string.format('%.17g', opens)}
end
local function place(t) return math.max(0, math.floor(t * 1000) - tonumber(ARGV[10])) * 1000 end
local seq
if sched and now < sched then
  seq = string.format('%.0f', place(sched))
else
  seq = string.format('%.0f', math.max(place(now) + 1, tonumber(redis.call('GET', KEYS[4]) or '0') + 1))
  redis.call('SET', KEYS[4], seq)
end
redis.call('ZREM', KEYS[7], redis.call('HGET', KEYS[1], 'id'))
redis.call('ZREM', KEYS[8], redis.call('HGET', KEYS[1], 'id'))
redis.call('HSET', KEYS[1], 'state', to, 'checked_in_at', ARGV[2], 'seq', seq,
  'reason', ARGV[4], 'consent_visit', ARGV[5], 'consent_recording', ARGV[6],
  'consent_version', ARGV[7], 'patient_sub', ARGV[8], 'patient_name', ARGV[9],
  'language', ARGV[11], 'consent_language', ARGV[12])
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

#: KEYS: visit, history, version, routed (visits routed to a named doctor)
#: ARGV: rules, now, doctor ('' = any doctor), by, clinic
ROUTE = PRELUDE + r"""
local from, to = step(KEYS[1], ARGV[1])
if not from then return to end
redis.call('HSET', KEYS[1], 'state', to, 'routed_to', ARGV[3])
history(KEYS[2], ARGV[2], from, to, 'route', ARGV[4])
local vid = redis.call('HGET', KEYS[1], 'id')
if ARGV[3] ~= '' then redis.call('HSET', KEYS[4], vid, ARGV[5]) else redis.call('HDEL', KEYS[4], vid) end
return {'ok', from, to, redis.call('INCR', KEYS[3])}
"""

#: Send a routed patient back to the shared queue if their doctor was not seen
#: since ARGV[3]; forget a visit that is no longer routed or queued.
#: KEYS: visit, history, version, routed, staff seen of the clinic
#: ARGV: rules (route), now, cutoff_ms, visit id
RETURN_ROUTED = PRELUDE + r"""
local doctor = redis.call('HGET', KEYS[1], 'routed_to')
local from, to = step(KEYS[1], ARGV[1])
if not from or not doctor or doctor == '' then
  redis.call('HDEL', KEYS[4], ARGV[4])
  return {'gone'}
end
local seen = redis.call('ZSCORE', KEYS[5], doctor)
if seen and tonumber(seen) >= tonumber(ARGV[3]) then return {'present'} end
redis.call('HSET', KEYS[1], 'state', to, 'routed_to', '')
history(KEYS[2], ARGV[2], from, to, 'route', 'system')
redis.call('HDEL', KEYS[4], ARGV[4])
return {'ok', from, to, redis.call('INCR', KEYS[3]), doctor}
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

#: KEYS: visit, history, queue, version, durations, seen, chat, chat_ids, in_visit, charts pending,
#:       expected, appointments due
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
redis.call('ZREM', KEYS[11], vid)
redis.call('ZREM', KEYS[12], vid)
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
#: (telemed/estimate.py) needs: {version, length, doctors on duty, {visit
#: lengths}, {when each doctor on duty who is in a visit began it}, {queued per
#: ESI level 1-5}, rank...}, a rank (0-based) per visit asked for, or -1 for one
#: not queued. A node asks for the patients whose sockets it holds, so each node
#: pushes to its own sockets; the rest is per clinic, not per patient.
#: The visit ids come as one argument, comma-separated (ids have no commas,
#: telemed.tokens.ID_PATTERN): thousands of separate arguments cost the node
#: ~3 ms to pack at every push round.
#: KEYS: queue, durations, doctors, version, in_visit
#: ARGV: now_ms, on-duty window ms (TELEMED_ON_DUTY, telemed/duty.py), visit key prefix,
#:       key suffix, visit ids joined by ','
POSITIONS = r"""
local since = tonumber(ARGV[1]) - tonumber(ARGV[2])
local doctors = redis.call('ZCOUNT', KEYS[3], since, '+inf')
local began = {}
for _, vid in ipairs(redis.call('SMEMBERS', KEYS[5])) do
  local v = redis.call('HMGET', ARGV[3] .. vid .. ARGV[4], 'doctor', 'admitted_at')
  local seen = v[1] and v[2] and redis.call('ZSCORE', KEYS[3], v[1])
  if seen and tonumber(seen) >= since and (not began[v[1]] or tonumber(v[2]) > tonumber(began[v[1]])) then
    began[v[1]] = v[2]
  end
end
local busy = {}
for _, at in pairs(began) do busy[#busy + 1] = at end
-- queued per level: scores are acuity * 1e15 + place, as score() in PRELUDE makes them
local levels = {}
for level = 1, 5 do
  levels[level] = redis.call('ZCOUNT', KEYS[1], string.format('%.0f', level * 1e15),
    '(' .. string.format('%.0f', (level + 1) * 1e15))
end
local out = {redis.call('GET', KEYS[4]) or '0', redis.call('ZCARD', KEYS[1]), doctors,
  redis.call('LRANGE', KEYS[2], 0, -1), busy, levels}
for vid in string.gmatch(ARGV[5], '[^,]+') do
  out[#out + 1] = redis.call('ZRANK', KEYS[1], vid) or -1
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

#: A fresh link for a visit not checked in yet: the visit lasts as long as it.
#: KEYS: visit. ARGV: expires_at (epoch s), key ttl (s)
EXTEND_LINK = r"""
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {'not_found'} end
if state ~= 'created' then return {'conflict', state} end
redis.call('HSET', KEYS[1], 'expires_at', ARGV[1])
redis.call('EXPIRE', KEYS[1], tonumber(ARGV[2]))
return {'ok'}
"""
