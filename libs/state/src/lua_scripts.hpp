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
//   NOTFOUND, ENDED (the eval ended or takes no more jobs) or BADARG; the
//   adapter maps them to ErrorCode::kNotFound, kRejected and kPoison.
// - A transition comes back as {ready ids, dependency_failed ids,
//   eval_finished 0|1, eval state, cancelled ids, ended job hashes (each
//   HGETALL's flat field/value list), {jobs_total, jobs_pending,
//   jobs_failed, finished_ms}}; finish_job and cancel_eval store theirs as
//   cjson text, which keeps every byte of the ids. The ended jobs' hashes
//   are read in the script that answers, never by the caller afterwards.
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

-- States only evaluation or a failed dependency give (StateStore::add_jobs).
local evaluation_end = {eval_failed = true, skipped = true, unsupported_system = true, cached_failure = true,
                        dependency_failed = true}

local function new_transition()
  return {ready = {}, dependency_failed = {}, eval_finished = false, eval_state = 'building', cancelled = {}, ended = {}}
end
-- The eval's counters now: {jobs_total, jobs_pending, jobs_failed, finished_ms}.
local function tally_of(ek)
  local c = redis.call('HMGET', ek, 'jobs_total', 'jobs_pending', 'jobs_failed', 'finished_ms')
  return {tonumber(c[1]) or 0, tonumber(c[2]) or 0, tonumber(c[3]) or 0, tonumber(c[4]) or 0}
end
-- The hashes of the jobs `ids` that are terminal (a job a transition ended
-- stays as it ended: terminal states never change).
local function ended_records(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local s = redis.call('HGET', job_key(id), 'state')
    if s and terminal(s) then out[#out + 1] = redis.call('HGETALL', job_key(id)) end
  end
  return out
end
local function transition_reply(t, ek)
  return {t.ready, t.dependency_failed, t.eval_finished and 1 or 0, t.eval_state, t.cancelled or {},
          ended_records(t.ended or {}), t.tally or tally_of(ek)}
end

-- Fails every transitive dependent of job `id` that has not ended, naming
-- `attr`; lists them in t.dependency_failed and returns how many.
local function fail_dependents(id, attr, now, t)
  local why = 'dependency ' .. attr .. ' failed'
  local n = 0
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
      n = n + 1
      t.dependency_failed[#t.dependency_failed + 1] = c
      local grand = redis.call('LRANGE', children_key(c), 0, -1)
      for k = #grand, 1, -1 do stack[#stack + 1] = grand[k] end
    end
  end
  return n
end

-- Counts job `id`, already written terminal as `state`, out of its eval:
-- on success releases dependents whose last dependency it was (collected
-- into t.ready when collect_ready), otherwise fails every transitive
-- dependent that has not ended, naming `attr`. Ends the eval when nothing
-- is pending and its job set is complete (or it was cancelled): while
-- batches still arrive, more jobs may come. Each edge is looked at once:
-- O(dependents).
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
    local n = fail_dependents(id, attr, now, t)
    ended = ended + n
    failed = 1 + n
  end
  local pending = redis.call('HINCRBY', ek, 'jobs_pending', -ended)
  local failed_total
  if failed > 0 then failed_total = redis.call('HINCRBY', ek, 'jobs_failed', failed)
  else failed_total = tonumber(redis.call('HGET', ek, 'jobs_failed')) end
  local e = redis.call('HMGET', ek, 'state', 'complete', 'cancelled', 'cancel_ends_as')
  local es = e[1]
  if pending <= 0 and not eval_ended(es) and (e[2] == '1' or e[3] == '1') then
    if e[3] == '1' then es = e[4] == 'failed' and 'failed' or 'cancelled'
    else es = failed_total == 0 and 'succeeded' or 'failed' end
    redis.call('HSET', ek, 'state', es, 'finished_ms', now)
    t.eval_finished = true
  end
  t.eval_state = es
end

-- The standing of the jobs `ids` of eval `eval_id` (each once; other
-- evals' jobs skipped): queued ones with nothing pending into t.ready,
-- dependency_failed ones into t.dependency_failed, those evaluation or a
-- failed dependency ended into t.ended.
local function standing(eval_id, ids, t)
  local seen = {}
  for _, id in ipairs(ids) do
    if not seen[id] then
      seen[id] = true
      local h = redis.call('HMGET', job_key(id), 'eval_id', 'state', 'deps_pending')
      if h[1] == eval_id then
        if h[2] == 'queued' and tonumber(h[3]) == 0 then t.ready[#t.ready + 1] = id end
        if h[2] == 'dependency_failed' then t.dependency_failed[#t.dependency_failed + 1] = id end
        if evaluation_end[h[2]] then t.ended[#t.ended + 1] = id end
      end
    end
  end
end
)LUA";

// KEYS[1] a hash (an eval, a failed derivation). ARGV: field, value, ...
// Returns 1 if created, 0 if it existed (then it is left as it was).
inline constexpr const char* kCreateEval = R"LUA(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
)LUA";

// KEYS[1] eval, KEYS[2] eval-jobs.
// ARGV[1] prefix, ARGV[2] eval id, ARGV[3] now, ARGV[4] complete (1|0),
// ARGV[5] number of jobs, then per job: id, attr, drv_path, system, state,
// error, cache_status, name, required system features (one per line),
// number of outputs, (name, path) per output,
// number of deps, dep id per dep.
// Flat arguments instead of one JSON document: nothing to decode, and every
// byte of every string arrives as sent.
inline constexpr const char* kAddJobsBody = R"LUA(
local ek, list_key = KEYS[1], KEYS[2]
local eval_id, now, complete = ARGV[2], ARGV[3], ARGV[4] == '1'
local e = redis.call('HMGET', ek, 'state', 'complete', 'cancelled')
local es = e[1]
if not es then return redis.error_reply('NOTFOUND eval ' .. eval_id .. ' not found') end
if e[2] == '1' then
  if not complete then return redis.error_reply('ENDED eval ' .. eval_id .. ': job set already complete') end
  -- A repeat of the last call, or a replay: the standing of every job.
  local t = new_transition()
  standing(eval_id, redis.call('LRANGE', list_key, 0, -1), t)
  t.eval_state = es
  t.eval_finished = eval_ended(es)
  return transition_reply(t, ek)
end
if e[3] == '1' or eval_ended(es) then return redis.error_reply('ENDED eval ' .. eval_id .. ' already ended') end

local jobs, ids = {}, {}
local function bad(what) return redis.error_reply('BADARG add_jobs: ' .. what) end
local i, count = 6, tonumber(ARGV[5])
if not count then return bad('no job count') end
for n = 1, count do
  local id, attr, state = ARGV[i], ARGV[i + 1], ARGV[i + 4]
  local outputs = tonumber(ARGV[i + 9])
  if not outputs then return bad('truncated job list') end
  local fields = {'id', id, 'eval_id', eval_id, 'attr', attr, 'drv_path', ARGV[i + 2], 'system', ARGV[i + 3],
                  'state', state, 'error', ARGV[i + 5], 'cache_status', ARGV[i + 6], 'name', ARGV[i + 7],
                  'features', ARGV[i + 8], 'started_ms', 0, 'finished_ms', terminal(state) and now or 0, 'attempts', 0}
  i = i + 10
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
  ids[n] = id
end
if i - 1 ~= #ARGV then return bad('job list does not match its count') end

-- Jobs new to the store, in batch order; ids that exist are left as they are.
local fresh, is_fresh, fresh_ids = {}, {}, {}
for _, j in ipairs(jobs) do
  if not is_fresh[j.id] and redis.call('EXISTS', job_key(j.id)) == 0 then
    is_fresh[j.id] = true
    fresh[#fresh + 1] = j
    fresh_ids[#fresh_ids + 1] = j.id
  end
end
-- Edges: to a new job of this batch, or to a job of this eval that has not
-- ended. A dependency that already ended badly fails the new job below;
-- anything else (another eval's job, an unknown id, a success) is met.
for _, j in ipairs(fresh) do redis.call('DEL', children_key(j.id)) end
for _, j in ipairs(fresh) do
  local n = 0
  for _, d in ipairs(j.deps) do
    if is_fresh[d] then
      redis.call('RPUSH', children_key(d), j.id)
      n = n + 1
    else
      local h = redis.call('HMGET', job_key(d), 'eval_id', 'state', 'attr')
      if h[1] == eval_id then
        if not terminal(h[2]) then
          redis.call('RPUSH', children_key(d), j.id)
          n = n + 1
        elseif not success(h[2]) and not j.failed_by then
          j.failed_by = h[3]
        end
      end
    end
  end
  j.fields[#j.fields + 1] = 'deps_pending'
  j.fields[#j.fields + 1] = n
  redis.call('HSET', job_key(j.id), unpack(j.fields))
end
for k = 1, #fresh_ids, 1000 do
  redis.call('RPUSH', list_key, unpack(fresh_ids, k, math.min(k + 999, #fresh_ids)))
end
redis.call('HINCRBY', ek, 'jobs_total', #fresh)
redis.call('HINCRBY', ek, 'jobs_pending', #fresh)

-- Every edge counts until its job settles, including jobs born terminal:
-- settling them here releases or fails their dependents in the batch.
-- The eval cannot end in this loop: its job set is not complete yet.
local t = new_transition()
for _, j in ipairs(fresh) do
  if terminal(j.state) then
    settle(ek, j.id, j.state, j.attr, now, t, false)
  elseif j.failed_by and not terminal(redis.call('HGET', job_key(j.id), 'state')) then
    redis.call('HSET', job_key(j.id), 'state', 'dependency_failed', 'error', 'dependency ' .. j.failed_by .. ' failed',
               'finished_ms', now)
    local n = 1 + fail_dependents(j.id, j.failed_by, now, t)
    redis.call('HINCRBY', ek, 'jobs_pending', -n)
    redis.call('HINCRBY', ek, 'jobs_failed', n)
  end
end
if complete then
  redis.call('HSET', ek, 'complete', 1, 'state', 'building')
  local c = redis.call('HMGET', ek, 'jobs_pending', 'jobs_failed')
  if tonumber(c[1]) <= 0 then  -- nothing (left) to build
    redis.call('HSET', ek, 'state', tonumber(c[2]) == 0 and 'succeeded' or 'failed', 'finished_ms', now)
    t.eval_finished = true
  end
end
t.ready, t.dependency_failed, t.ended = {}, {}, {}
standing(eval_id, ids, t)
t.eval_state = redis.call('HGET', ek, 'state')
return transition_reply(t, ek)
)LUA";

// KEYS[1] eval, KEYS[2] eval-warnings. ARGV[1] most warnings kept, then the
// warnings (already truncated). Appends the ones not stored yet, in order.
inline constexpr const char* kAddEvalWarnings = R"LUA(
if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOTFOUND eval not found') end
local cap = tonumber(ARGV[1])
local seen = {}
local stored = redis.call('LRANGE', KEYS[2], 0, -1)
for _, w in ipairs(stored) do seen[w] = true end
local n = #stored
for k = 2, #ARGV do
  if n >= cap then break end
  local w = ARGV[k]
  if not seen[w] then
    redis.call('RPUSH', KEYS[2], w)
    seen[w] = true
    n = n + 1
  end
end
return n
)LUA";

// KEYS[1] job, KEYS[2] job-transition. ARGV[1] prefix, ARGV[2] state,
// ARGV[3] error, ARGV[4] now.
inline constexpr const char* kFinishJobBody = R"LUA(
local key, tkey = KEYS[1], KEYS[2]
local h = redis.call('HMGET', key, 'state', 'eval_id', 'attr', 'id')
if not h[1] then return redis.error_reply('NOTFOUND job not found') end
local ek = eval_key(h[2])
-- The job first, then the dependents its failure ended.
local function with_ended(t)
  t.ended = {h[4]}
  for _, id in ipairs(t.dependency_failed) do t.ended[#t.ended + 1] = id end
  return t
end
if terminal(h[1]) then
  local stored = redis.call('GET', tkey)
  if stored then return transition_reply(with_ended(cjson.decode(stored)), ek) end
  local t = new_transition()  -- ended without a finish of its own (born terminal, dependency_failed)
  t.eval_state = redis.call('HGET', ek, 'state') or 'building'
  return transition_reply(with_ended(t), ek)
end
local state, now = ARGV[2], ARGV[4]
if not terminal(state) then return redis.error_reply('BADARG finish_job: state ' .. state .. ' is not terminal') end
redis.call('HSET', key, 'state', state, 'error', ARGV[3], 'finished_ms', now)
local t = new_transition()
settle(ek, h[4], state, h[3], now, t, true)
t.tally = tally_of(ek)
with_ended(t)
redis.call('SET', tkey, cjson.encode(t))
return transition_reply(t, ek)
)LUA";

// KEYS[1] eval, KEYS[2] eval-jobs, KEYS[3] eval-cancel. ARGV[1] prefix,
// ARGV[2] reason, ARGV[3] now, ARGV[4] the state it ends in (cancelled |
// failed).
inline constexpr const char* kCancelEvalBody = R"LUA(
local ek, list_key, ckey = KEYS[1], KEYS[2], KEYS[3]
local why, now = ARGV[2], ARGV[3]
local ends_as = ARGV[4] == 'failed' and 'failed' or 'cancelled'
local es = redis.call('HGET', ek, 'state')
if not es then return redis.error_reply('NOTFOUND eval not found') end
local stored = redis.call('GET', ckey)
if stored then
  local t = cjson.decode(stored)
  t.ended = t.cancelled
  return transition_reply(t, ek)
end
local t = new_transition()
if eval_ended(es) then
  t.eval_state = es
  return transition_reply(t, ek)
end
redis.call('HSET', ek, 'cancelled', 1, 'cancel_reason', why, 'cancel_ends_as', ends_as)
-- Evaluating or building alike: what is queued ends now; builders see the
-- mark and stop what is building, and the last job to end ends the eval.
if es == 'evaluating' or ends_as == 'failed' then redis.call('HSET', ek, 'error', why) end
local n = 0
for _, id in ipairs(redis.call('LRANGE', list_key, 0, -1)) do
  local jk = job_key(id)
  if redis.call('HGET', jk, 'state') == 'queued' then
    redis.call('HSET', jk, 'state', 'cancelled', 'error', why, 'finished_ms', now)
    t.cancelled[#t.cancelled + 1] = id
    n = n + 1
  end
end
-- (HINCRBY only when n > 0: Lua's -0 reaches Redis as "-0", not an integer.)
local pending = tonumber(redis.call('HGET', ek, 'jobs_pending'))
if n > 0 then
  pending = redis.call('HINCRBY', ek, 'jobs_pending', -n)
  redis.call('HINCRBY', ek, 'jobs_failed', n)
end
if pending <= 0 then
  redis.call('HSET', ek, 'state', ends_as, 'finished_ms', now)
  t.eval_finished = true
end
t.eval_state = redis.call('HGET', ek, 'state')
t.tally = tally_of(ek)
t.ended = t.cancelled
redis.call('SET', ckey, cjson.encode(t))
return transition_reply(t, ek)
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

// KEYS[1] eval. ARGV[1] error, ARGV[2] now. Returns the eval's hash as the
// call left it.
inline constexpr const char* kFailEval = R"LUA(
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return redis.error_reply('NOTFOUND eval not found') end
if s ~= 'succeeded' and s ~= 'failed' and s ~= 'cancelled' then
  redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'finished_ms', ARGV[2])
end
return redis.call('HGETALL', KEYS[1])
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

// KEYS[1] projects (set), KEYS[2] projects-known (the marker that
// discovery ran). ARGV: the full names. Replaces the set whole; SADD in
// chunks stays under Lua's unpack limit.
inline constexpr const char* kSetProjects = R"LUA(
redis.call('DEL', KEYS[1])
local n = #ARGV
for i = 1, n, 1000 do
  redis.call('SADD', KEYS[1], unpack(ARGV, i, math.min(i + 999, n)))
end
redis.call('SET', KEYS[2], '1')
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

// KEYS[1] drv-build. ARGV[1] job, ARGV[2] now ms, ARGV[3] lease ms.
// Returns 1 if the job holds the claim now, 0 if another job's lease runs.
inline constexpr const char* kClaimDrvBuild = R"LUA(
local h = redis.call('HMGET', KEYS[1], 'owner', 'until')
if h[1] and h[1] ~= ARGV[1] and (tonumber(h[2]) or 0) > tonumber(ARGV[2]) then return 0 end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', tonumber(ARGV[2]) + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return 1
)LUA";

// KEYS[1] drv-build, KEYS[2] drv-result. ARGV[1] job, ARGV[2] has result
// (1|0), ARGV[3] result ttl ms, then state, error, job_id, attr, at_ms.
inline constexpr const char* kFinishDrvBuild = R"LUA(
if ARGV[2] == '1' then
  redis.call('DEL', KEYS[2])
  redis.call('HSET', KEYS[2], 'state', ARGV[4], 'error', ARGV[5], 'job_id', ARGV[6], 'attr', ARGV[7], 'at_ms', ARGV[8])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
)LUA";

}  // namespace flurry::state::lua
