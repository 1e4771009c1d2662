#pragma once
// Lua scripts of the Redis state store. Every multi-key change is one
// script, so concurrent builders and evaluators never see or leave a
// half-made change. Key layout: libs/state/README.md.
namespace flurry::state::lua {

// Shared helpers, prepended to the scripts that settle jobs.
inline constexpr const char* kPrelude = R"LUA(
local prefix = ARGV[1]
local function jk(id) return prefix .. ':job:' .. id end
local function ekey(id) return prefix .. ':eval:' .. id end
local function terminal(s) return s ~= 'queued' and s ~= 'building' end
local function success(s) return s == 'succeeded' or s == 'skipped' end
local function ended(s) return s == 'succeeded' or s == 'failed' or s == 'cancelled' end
local function empty_list() return setmetatable({}, cjson.array_mt) end

-- Counts a job that just became terminal in its eval; releases or fails its
-- dependents; ends the eval when nothing is pending. Fills t.
local function settle(ek, id, state, attr, now, t)
  redis.call('HINCRBY', ek, 'jobs_pending', -1)
  if success(state) then
    for _, c in ipairs(redis.call('LRANGE', jk(id) .. ':children', 0, -1)) do
      if redis.call('HGET', jk(c), 'state') == 'queued' then
        if redis.call('HINCRBY', jk(c), 'deps_pending', -1) == 0 then table.insert(t.ready, c) end
      end
    end
  else
    redis.call('HINCRBY', ek, 'jobs_failed', 1)
    local stack = redis.call('LRANGE', jk(id) .. ':children', 0, -1)
    local i = #stack
    -- depth-first, children in order
    local order = {}
    for k = #stack, 1, -1 do table.insert(order, stack[k]) end
    while #order > 0 do
      local c = table.remove(order)
      local cs = redis.call('HGET', jk(c), 'state')
      if not terminal(cs) then
        redis.call('HSET', jk(c), 'state', 'dependency_failed', 'error', 'dependency ' .. attr .. ' failed', 'finished_ms', now)
        redis.call('HINCRBY', ek, 'jobs_pending', -1)
        redis.call('HINCRBY', ek, 'jobs_failed', 1)
        table.insert(t.dependency_failed, c)
        local grand = redis.call('LRANGE', jk(c) .. ':children', 0, -1)
        for k = #grand, 1, -1 do table.insert(order, grand[k]) end
      end
    end
    local still = empty_list()
    for _, r in ipairs(t.ready) do
      if redis.call('HGET', jk(r), 'state') == 'queued' then table.insert(still, r) end
    end
    t.ready = still
  end
  local pending = tonumber(redis.call('HGET', ek, 'jobs_pending'))
  local es = redis.call('HGET', ek, 'state')
  if pending == 0 and not ended(es) then
    local failed = tonumber(redis.call('HGET', ek, 'jobs_failed'))
    es = failed == 0 and 'succeeded' or 'failed'
    redis.call('HSET', ek, 'state', es, 'finished_ms', now)
    t.eval_finished = true
  end
  t.eval_state = es
end

local function new_transition()
  return {ready = empty_list(), dependency_failed = empty_list(), eval_finished = false, eval_state = 'building'}
end
)LUA";

// KEYS[1] eval key; ARGV: field, value, ... Returns 1 if created.
inline constexpr const char* kCreateEval = R"LUA(
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
)LUA";

// KEYS[1] eval key; ARGV[1] prefix, ARGV[2] eval id, ARGV[3] jobs JSON, ARGV[4] now.
inline constexpr const char* kAddJobs = R"LUA(
local ek = KEYS[1]
local eval_id, now = ARGV[2], ARGV[4]
if redis.call('EXISTS', ek) == 0 then return redis.error_reply('NOTFOUND eval ' .. eval_id) end
local added = redis.call('HGET', ek, 'added')
if added then return added end
if ended(redis.call('HGET', ek, 'state')) then return redis.error_reply('ENDED eval ' .. eval_id .. ' already ended') end
local jobs = cjson.decode(ARGV[3])
local known = {}
for _, j in ipairs(jobs) do known[j.id] = true end
for _, j in ipairs(jobs) do
  local fin = 0
  if terminal(j.state) then fin = now end
  redis.call('HSET', jk(j.id), 'id', j.id, 'eval_id', eval_id, 'attr', j.attr, 'drv_path', j.drv_path,
             'system', j.system, 'outputs', j.outputs, 'state', j.state, 'error', j.error,
             'started_ms', 0, 'finished_ms', fin, 'attempts', 0, 'deps_pending', 0)
  redis.call('RPUSH', ek .. ':jobs', j.id)
end
for _, j in ipairs(jobs) do
  local n = 0
  for _, d in ipairs(j.deps) do
    if known[d] then
      redis.call('RPUSH', jk(d) .. ':children', j.id)
      n = n + 1
    end
  end
  if n > 0 then redis.call('HSET', jk(j.id), 'deps_pending', n) end
end
redis.call('HSET', ek, 'state', 'building', 'jobs_total', #jobs, 'jobs_pending', #jobs, 'jobs_failed', 0)
local t = new_transition()
local taken = {}
for _, j in ipairs(jobs) do
  if terminal(j.state) and not taken[j.id] then
    settle(ek, j.id, j.state, j.attr, now, t)
    for _, c in ipairs(t.dependency_failed) do taken[c] = true end
  end
end
if tonumber(redis.call('HGET', ek, 'jobs_pending')) == 0 and not ended(redis.call('HGET', ek, 'state')) then
  local failed = tonumber(redis.call('HGET', ek, 'jobs_failed'))
  redis.call('HSET', ek, 'state', failed == 0 and 'succeeded' or 'failed', 'finished_ms', now)
  t.eval_finished = true
end
t.eval_state = redis.call('HGET', ek, 'state')
t.ready = empty_list()
for _, j in ipairs(jobs) do
  local h = redis.call('HMGET', jk(j.id), 'state', 'deps_pending')
  if h[1] == 'queued' and tonumber(h[2]) == 0 then table.insert(t.ready, j.id) end
end
local out = cjson.encode(t)
redis.call('HSET', ek, 'added', out)
return out
)LUA";

// KEYS[1] job key; ARGV[1] prefix, ARGV[2] state, ARGV[3] error, ARGV[4] now.
inline constexpr const char* kFinishJob = R"LUA(
local key = KEYS[1]
if redis.call('EXISTS', key) == 0 then return redis.error_reply('NOTFOUND job') end
local h = redis.call('HMGET', key, 'state', 'eval_id', 'attr', 'transition', 'id')
local ek = ekey(h[2])
if terminal(h[1]) then
  if h[4] then return h[4] end
  local t = new_transition()
  t.eval_state = redis.call('HGET', ek, 'state')
  return cjson.encode(t)
end
local state, now = ARGV[2], ARGV[4]
redis.call('HSET', key, 'state', state, 'error', ARGV[3], 'finished_ms', now)
local t = new_transition()
settle(ek, h[5], state, h[3], now, t)
local out = cjson.encode(t)
redis.call('HSET', key, 'transition', out)
return out
)LUA";

// KEYS[1] job key; ARGV[1] now. Returns the state afterwards.
inline constexpr const char* kStartJob = R"LUA(
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return redis.error_reply('NOTFOUND job') end
if s ~= 'queued' and s ~= 'building' then return s end
redis.call('HSET', KEYS[1], 'state', 'building', 'started_ms', ARGV[1])
redis.call('HINCRBY', KEYS[1], 'attempts', 1)
return 'building'
)LUA";

// KEYS[1] eval key; ARGV[1] error, ARGV[2] now.
inline constexpr const char* kFailEval = R"LUA(
local s = redis.call('HGET', KEYS[1], 'state')
if not s then return redis.error_reply('NOTFOUND eval') end
if s == 'succeeded' or s == 'failed' or s == 'cancelled' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'failed', 'error', ARGV[1], 'finished_ms', ARGV[2])
return 1
)LUA";

// KEYS[1] log key; ARGV[1] chunk, ARGV[2] cap.
inline constexpr const char* kAppendLog = R"LUA(
local len = redis.call('APPEND', KEYS[1], ARGV[1])
local cap = tonumber(ARGV[2])
if len > cap then
  local tail = redis.call('GETRANGE', KEYS[1], len - cap, -1)
  redis.call('SET', KEYS[1], tail)
end
redis.call('EXPIRE', KEYS[1], 2592000)
return 1
)LUA";

// KEYS[1] status key; ARGV[1] at_us. 1 when the caller should post.
inline constexpr const char* kAdvanceStatus = R"LUA(
local cur = redis.call('GET', KEYS[1])
if cur and tonumber(cur) > tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', 2592000)
return 1
)LUA";

}  // namespace flurry::state::lua
