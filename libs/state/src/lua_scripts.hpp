#pragma once
// Lua scripts of the Redis state store. Every change that touches more than
// one value runs as one script, so concurrent builders and evaluators never
// see or leave a half-made change. Key layout: libs/state/README.md.
//
// Conventions shared by all scripts:
// - ARGV[1] is the key prefix when a script derives keys from ids (the job
//   graph is not known in advance, so this store needs a single Redis, not
//   Redis Cluster).
// - Scripts validate before their first write: Redis does not roll a
//   script back when it raises halfway.
// - Errors are `redis.error_reply('<CODE> <text>')` with CODE one of
//   NOTFOUND, ENDED (the eval already ended) or BADARG; the adapter maps
//   them to ErrorCode::kNotFound, kRejected and kPoison.
// - A transition comes back as {ready ids, dependency_failed ids,
//   eval_finished 0|1, eval state}; it is stored as cjson text, which keeps
//   every byte of the ids.
#include <string>

namespace flurry::state::lua {

// Helpers for the scripts that settle jobs.
inline constexpr const char* kPrelude = R"LUA(
local prefix = ARGV[1]
local function job_key(id) return prefix .. ':job:' .. id end
local function children_key(id) return prefix .. ':job-children:' .. id end
local function eval_key(id) return prefix .. ':eval:' .. id end
local function terminal(s) return s ~= 'queued' and s ~= 'building' end
local function success(s) return s == 'succeeded' or s == 'skipped' end
local function eval_ended(s) return s == 'succeeded' or s == 'failed' or s == 'cancelled' end

local function new_transition()
  return {ready = {}, dependency_failed = {}, eval_finished = false, eval_state = 'building', cancelled = {}}
end
local function transition_reply(t)
  return {t.ready, t.dependency_failed, t.eval_finished and 1 or 0, t.eval_state, t.cancelled or {}}
end

-- Counts job `id`, already written terminal as `state`, out of its eval:
-- on success releases dependents whose last dependency it was (collected
-- into t.ready when collect_ready), otherwise fails every transitive
-- dependent that has not ended, naming `attr`. Ends the eval when nothing
-- is pending. Each edge is looked at once: O(dependents).
local function settle(ek, id, state, attr, now, t, collect_ready)
  local ended, failed = 1, 0
  if success(state) then
    for _, c in ipairs(redis.call('LRANGE', children_key(id), 0, -1)) do
      local ck = job_key(c)
      if redis.call('HGET', ck, 'state') == 'queued' then
        local left = redis.call('HINCRBY', ck, 'deps_pending', -1)
        if left == 0 and collect_ready then t.ready[#t.ready + 1] = c end
      end
    end
  else
    failed = 1
    local why = 'dependency ' .. attr .. ' failed'
    local stack = {}
    local kids = redis.call('LRANGE', children_key(id), 0, -1)
    for k = #kids, 1, -1 do stack[#stack + 1] = kids[k] end
    while #stack > 0 do
      local c = stack[#stack]
      stack[#stack] = nil
      local ck = job_key(c)
      local cs = redis.call('HGET', ck, 'state')
      if cs and not terminal(cs) then
        redis.call('HSET', ck, 'state', 'dependency_failed', 'error', why, 'finished_ms', now)
        ended = ended + 1
        failed = failed + 1
        t.dependency_failed[#t.dependency_failed + 1] = c
        local grand = redis.call('LRANGE', children_key(c), 0, -1)
        for k = #grand, 1, -1 do stack[#stack + 1] = grand[k] end
      end
    end
  end
  local pending = redis.call('HINCRBY', ek, 'jobs_pending', -ended)
  local failed_total
  if failed > 0 then failed_total = redis.call('HINCRBY', ek, 'jobs_failed', failed)
  else failed_total = tonumber(redis.call('HGET', ek, 'jobs_failed')) end
  local es = redis.call('HGET', ek, 'state')
  if pending <= 0 and not eval_ended(es) then
    if redis.call('HGET', ek, 'cancelled') == '1' then es = 'cancelled'
    else es = failed_total == 0 and 'succeeded' or 'failed' end
    redis.call('HSET', ek, 'state', es, 'finished_ms', now)
    t.eval_finished = true
  end
  t.eval_state = es
end
)LUA";

// KEYS[1] eval. ARGV: field, value, ... Returns 1 if created, 0 if it existed.
inline constexpr const char* kCreateEval = R"LUA(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
)LUA";

// KEYS[1] eval, KEYS[2] eval-jobs, KEYS[3] eval-added.
// ARGV[1] prefix, ARGV[2] eval id, ARGV[3] now, ARGV[4] number of jobs, then
// per job: id, attr, drv_path, system, state, error, number of outputs,
// (name, path) per output, number of deps, dep id per dep.
// Flat arguments instead of one JSON document: nothing to decode, and every
// byte of every string arrives as sent.
inline constexpr const char* kAddJobsBody = R"LUA(
local ek, list_key, added_key = KEYS[1], KEYS[2], KEYS[3]
local eval_id, now = ARGV[2], ARGV[3]
local es = redis.call('HGET', ek, 'state')
if not es then return redis.error_reply('NOTFOUND eval ' .. eval_id .. ' not found') end
local stored = redis.call('GET', added_key)
if stored then return transition_reply(cjson.decode(stored)) end
if eval_ended(es) then return redis.error_reply('ENDED eval ' .. eval_id .. ' already ended') end

local jobs, known, ids = {}, {}, {}
local function bad(what) return redis.error_reply('BADARG add_jobs: ' .. what) end
local i, count = 5, tonumber(ARGV[4])
if not count then return bad('no job count') end
for n = 1, count do
  local id, attr, state = ARGV[i], ARGV[i + 1], ARGV[i + 4]
  local outputs = tonumber(ARGV[i + 6])
  if not outputs then return bad('truncated job list') end
  local fields = {'id', id, 'eval_id', eval_id, 'attr', attr, 'drv_path', ARGV[i + 2], 'system', ARGV[i + 3],
                  'state', state, 'error', ARGV[i + 5], 'started_ms', 0,
                  'finished_ms', terminal(state) and now or 0, 'attempts', 0}
  i = i + 7
  for _ = 1, outputs do
    fields[#fields + 1] = 'output:' .. ARGV[i]
    fields[#fields + 1] = ARGV[i + 1]
    i = i + 2
  end
  local ndeps = tonumber(ARGV[i])
  if not ndeps then return bad('truncated job list') end
  local deps = {}
  for k = 1, ndeps do deps[k] = ARGV[i + k] end
  i = i + 1 + ndeps
  jobs[n] = {id = id, attr = attr, state = state, deps = deps, fields = fields}
  known[id] = true
  ids[n] = id
end
if i - 1 ~= #ARGV then return bad('job list does not match its count') end

-- A fresh record per job, then the edges (only to jobs of this eval), then
-- the hashes with their dependency counters.
for _, j in ipairs(jobs) do redis.call('DEL', job_key(j.id), children_key(j.id)) end
for _, j in ipairs(jobs) do
  local n = 0
  for _, d in ipairs(j.deps) do
    if known[d] then
      redis.call('RPUSH', children_key(d), j.id)
      n = n + 1
    end
  end
  j.fields[#j.fields + 1] = 'deps_pending'
  j.fields[#j.fields + 1] = n
  redis.call('HSET', job_key(j.id), unpack(j.fields))
end
redis.call('DEL', list_key)
for k = 1, #ids, 1000 do redis.call('RPUSH', list_key, unpack(ids, k, math.min(k + 999, #ids))) end
redis.call('HSET', ek, 'state', 'building', 'jobs_total', #jobs, 'jobs_pending', #jobs, 'jobs_failed', 0)

local t = new_transition()
for _, j in ipairs(jobs) do
  if terminal(j.state) then settle(ek, j.id, j.state, j.attr, now, t, false) end
end
if #jobs == 0 then  -- nothing to build at all
  redis.call('HSET', ek, 'state', 'succeeded', 'finished_ms', now)
  t.eval_finished = true
  t.eval_state = 'succeeded'
end
-- Ready: every queued job whose dependencies all succeeded, in order.
for _, j in ipairs(jobs) do
  if j.state == 'queued' then
    local h = redis.call('HMGET', job_key(j.id), 'state', 'deps_pending')
    if h[1] == 'queued' and tonumber(h[2]) == 0 then t.ready[#t.ready + 1] = j.id end
  end
end
redis.call('SET', added_key, cjson.encode(t))
return transition_reply(t)
)LUA";

// KEYS[1] job, KEYS[2] job-transition. ARGV[1] prefix, ARGV[2] state,
// ARGV[3] error, ARGV[4] now.
inline constexpr const char* kFinishJobBody = R"LUA(
local key, tkey = KEYS[1], KEYS[2]
local h = redis.call('HMGET', key, 'state', 'eval_id', 'attr', 'id')
if not h[1] then return redis.error_reply('NOTFOUND job not found') end
local ek = eval_key(h[2])
if terminal(h[1]) then
  local stored = redis.call('GET', tkey)
  if stored then return transition_reply(cjson.decode(stored)) end
  local t = new_transition()  -- ended without a finish of its own (born terminal, dependency_failed)
  t.eval_state = redis.call('HGET', ek, 'state') or 'building'
  return transition_reply(t)
end
local state, now = ARGV[2], ARGV[4]
if not terminal(state) then return redis.error_reply('BADARG finish_job: state ' .. state .. ' is not terminal') end
redis.call('HSET', key, 'state', state, 'error', ARGV[3], 'finished_ms', now)
local t = new_transition()
settle(ek, h[4], state, h[3], now, t, true)
redis.call('SET', tkey, cjson.encode(t))
return transition_reply(t)
)LUA";

// KEYS[1] eval, KEYS[2] eval-jobs, KEYS[3] eval-cancel. ARGV[1] prefix,
// ARGV[2] reason, ARGV[3] now.
inline constexpr const char* kCancelEvalBody = R"LUA(
local ek, list_key, ckey = KEYS[1], KEYS[2], KEYS[3]
local why, now = ARGV[2], ARGV[3]
local es = redis.call('HGET', ek, 'state')
if not es then return redis.error_reply('NOTFOUND eval not found') end
local stored = redis.call('GET', ckey)
if stored then return transition_reply(cjson.decode(stored)) end
local t = new_transition()
if eval_ended(es) then
  t.eval_state = es
  return transition_reply(t)
end
redis.call('HSET', ek, 'cancelled', 1)
if es == 'evaluating' then
  redis.call('HSET', ek, 'state', 'cancelled', 'error', why, 'finished_ms', now)
  t.eval_finished = true
else
  local n = 0
  for _, id in ipairs(redis.call('LRANGE', list_key, 0, -1)) do
    local jk = job_key(id)
    if redis.call('HGET', jk, 'state') == 'queued' then
      redis.call('HSET', jk, 'state', 'cancelled', 'error', why, 'finished_ms', now)
      t.cancelled[#t.cancelled + 1] = id
      n = n + 1
    end
  end
  local pending = redis.call('HINCRBY', ek, 'jobs_pending', -n)
  if n > 0 then redis.call('HINCRBY', ek, 'jobs_failed', n) end
  if pending <= 0 then
    redis.call('HSET', ek, 'state', 'cancelled', 'finished_ms', now)
    t.eval_finished = true
  end
end
t.eval_state = redis.call('HGET', ek, 'state')
redis.call('SET', ckey, cjson.encode(t))
return transition_reply(t)
)LUA";

// KEYS[1] ref head. ARGV[1] eval id, ARGV[2] received ms. Returns the eval
// the caller must cancel ('' for none).
inline constexpr const char* kSupersede = R"LUA(
local cur = redis.call('HMGET', KEYS[1], 'eval', 'received_ms', 'replaced')
if not cur[1] then
  redis.call('HSET', KEYS[1], 'eval', ARGV[1], 'received_ms', ARGV[2], 'replaced', '')
  return ''
end
-- A repeat by the head itself answers what it replaced, so that a caller
-- that crashed before finishing the cancel can finish it.
if cur[1] == ARGV[1] then return cur[3] or '' end
if tonumber(ARGV[2]) >= tonumber(cur[2]) then
  redis.call('HSET', KEYS[1], 'eval', ARGV[1], 'received_ms', ARGV[2], 'replaced', cur[1])
  return cur[1]
end
return ARGV[1]
)LUA";

// KEYS[1] job. ARGV[1] now. Returns the job's state afterwards.
inline constexpr const char* kStartJob = R"LUA(
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return redis.error_reply('NOTFOUND job not found') end
if s ~= 'queued' and s ~= 'building' then return s end
redis.call('HSET', KEYS[1], 'state', 'building', 'started_ms', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 'building'
)LUA";

// KEYS[1] eval. ARGV[1] error, ARGV[2] now. Returns 1 if this call ended it.
inline constexpr const char* kFailEval = R"LUA(
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return redis.error_reply('NOTFOUND eval not found') end
if s == 'succeeded' or s == 'failed' or s == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'finished_ms', ARGV[2])
return 1
)LUA";

// KEYS[1] log. ARGV[1] chunk, ARGV[2] cap in bytes, ARGV[3] TTL in seconds.
inline constexpr const char* kAppendLog = R"LUA(
local len = redis.call('APPEND', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if len > cap then
  local tail = ''
  if cap > 0 then tail = redis.call('GETRANGE', KEYS[1], len - cap, -1) end
  redis.call('SET', KEYS[1], tail)
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
return len
)LUA";

// KEYS[1] status. ARGV[1] at_us, ARGV[2] TTL in seconds. Returns 1 when the
// caller should post. Lua numbers are doubles: exact for microseconds since
// 1970 until the year 2255.
inline constexpr const char* kAdvanceStatus = R"LUA(
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
)LUA";

inline const std::string& add_jobs_script() {
  static const std::string s = std::string(kPrelude) + kAddJobsBody;
  return s;
}
inline const std::string& cancel_eval_script() {
  static const std::string s = std::string(kPrelude) + kCancelEvalBody;
  return s;
}
inline const std::string& finish_job_script() {
  static const std::string s = std::string(kPrelude) + kFinishJobBody;
  return s;
}

}  // namespace flurry::state::lua
