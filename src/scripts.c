/*
 * scripts: the Lua slotd has Redis run (see scripts.h). Each checks first
 * and writes last, so that a check that fails leaves every key as it was.
 * docs/protocol.md shows them; a test checks that it shows them as they are.
 */
#include "scripts.h"

const char scripts_commit[] =
    "local n = tonumber(ARGV[1])\n"
    "local bad = nil\n"
    "local t\n"
    "for i = 3, 2, -1 do\n"
    "  t = redis.call('TYPE', KEYS[i]).ok\n"
    "  if bad then\n"
    "  elseif t ~= 'string' and t ~= 'none' then\n"
    "    bad = {'wrongtype', KEYS[i], t}\n"
    "  else\n"
    "    local v = redis.call('GET', KEYS[i]) or '0'\n"
    "    if v ~= ARGV[i] then bad = {i == 2 and 'stale' or 'fenced', KEYS[i], v} end\n"
    "  end\n"
    "end\n"
    "t = redis.call('TYPE', KEYS[1]).ok\n"
    "if bad then\n"
    "elseif t ~= 'list' and t ~= 'none' then\n"
    "  bad = {'wrongtype', KEYS[1], t}\n"
    "elseif redis.call('LLEN', KEYS[1]) < n then\n"
    "  bad = {'short', KEYS[1], redis.call('LLEN', KEYS[1])}\n"
    "end\n"
    "t = redis.call('TYPE', KEYS[4]).ok\n"
    "if not bad and t ~= 'hash' and t ~= 'none' then bad = {'wrongtype', KEYS[4], t} end\n"
    "local pushed = {}\n"
    "for i = 5, #KEYS do\n"
    "  t = redis.call('TYPE', KEYS[i]).ok\n"
    "  pushed[i] = t == 'list'\n"
    "  if not pushed[i] and not bad then bad = {'wrongtype', KEYS[i], t} end\n"
    "end\n"
    "if bad then\n"
    "  for i = 5, #KEYS do\n"
    "    if pushed[i] then redis.call('LPOP', KEYS[i], ARGV[i - 1]) end\n"
    "  end\n"
    "  return bad\n"
    "end\n"
    "redis.call('LTRIM', KEYS[1], 0, -n - 1)\n"
    "redis.call('HINCRBY', KEYS[4], string.match(ARGV[3], '^%d+'), n)\n"
    "return redis.call('INCR', KEYS[2])\n";

const char scripts_apply[] =
    "#!lua flags=allow-oom\n"
    "for i = 2, 1, -1 do\n"
    "  local t = redis.call('TYPE', KEYS[i]).ok\n"
    "  if t ~= 'string' and t ~= 'none' then return {'wrongtype', KEYS[i], t} end\n"
    "  local v = redis.call('GET', KEYS[i]) or '0'\n"
    "  if v ~= ARGV[i] then return {i == 1 and 'stale' or 'fenced', KEYS[i], v} end\n"
    "end\n"
    "local t\n"
    "local i = 4\n"
    "for j = 1, tonumber(ARGV[3]) do\n"
    "  local key, want = ARGV[i], ARGV[i + 1]\n"
    "  t = redis.call('TYPE', key).ok\n"
    "  if t ~= 'none' then\n"
    "    if want == 'int' then\n"
    "      local s = t == 'string' and redis.call('GET', key) or ''\n"
    "      if not string.match(s, '^%-?%d+$') or #s > 18 then\n"
    "        return {'wrongtype', key, t == 'string' and 'string, not an integer' or t}\n"
    "      end\n"
    "    elseif t ~= want then\n"
    "      return {'wrongtype', key, t}\n"
    "    end\n"
    "  end\n"
    "  i = i + 2\n"
    "end\n"
    "local out = {}\n"
    "while i <= #ARGV do\n"
    "  local argc = tonumber(ARGV[i])\n"
    "  local w = ARGV[i + 1]\n"
    "  if w == 'MOVEALL' then\n"
    "    local n = 0\n"
    "    while redis.call('LMOVE', ARGV[i + 2], ARGV[i + 3], 'LEFT', 'RIGHT') do n = n + 1 end\n"
    "    out[#out + 1] = n\n"
    "  elseif w == 'TRY' then\n"
    "    out[#out + 1] = redis.pcall(unpack(ARGV, i + 2, i + argc)) or false\n"
    "  else\n"
    "    out[#out + 1] = redis.call(unpack(ARGV, i + 1, i + argc)) or false\n"
    "  end\n"
    "  i = i + argc + 1\n"
    "end\n"
    "return {'ok', redis.call('INCR', KEYS[1]), out}\n";

const char scripts_acquire[] =
    "#!lua flags=allow-oom\n"
    "for i = 1, 3 do\n"
    "  local t = redis.call('TYPE', KEYS[i]).ok\n"
    "  local want = i == 3 and 'hash' or 'string'\n"
    "  if t ~= 'none' and t ~= want then return {'wrongtype', KEYS[i], t} end\n"
    "end\n"
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"
    "local held = redis.call('GET', KEYS[1])\n"
    "if held then return {'held', held, redis.call('PTTL', KEYS[1]), cur} end\n"
    "local n = (tonumber(string.match(cur, '^%d+')) or 0) + 1\n"
    "local e = string.format('%d', n) .. ' ' .. ARGV[3]\n"
    "redis.call('SET', KEYS[2], e)\n"
    "redis.call('SET', KEYS[1], e .. ' ' .. ARGV[1], 'PX', ARGV[2])\n"
    "for _, f in ipairs(redis.call('HKEYS', KEYS[3])) do\n"
    "  if (tonumber(f) or 0) <= n - 100 then redis.call('HDEL', KEYS[3], f) end\n"
    "end\n"
    "return {'won', e}\n";

/* The lease scripts begin so: both keys strings (or missing), or nothing
 * is written. They may run over maxmemory: a lease is a few bytes, and
 * losing it would stop routing for want of memory. */
#define LEASE_KEYS_CHECKED \
    "#!lua flags=allow-oom\n" \
    "for i = 1, 2 do\n" \
    "  local t = redis.call('TYPE', KEYS[i]).ok\n" \
    "  if t ~= 'none' and t ~= 'string' then return {'wrongtype', KEYS[i], t} end\n" \
    "end\n"

const char scripts_renew[] =
    LEASE_KEYS_CHECKED
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"
    "if cur ~= ARGV[1] then\n"
    "  return {'lost', cur, redis.call('GET', KEYS[1]) or '', redis.call('PTTL', KEYS[1])}\n"
    "end\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. ARGV[2], 'PX', ARGV[3])\n"
    "return {'renewed'}\n";

const char scripts_release[] =
    "#!lua flags=allow-oom\n"
    "for i = 1, 2 do\n"
    "  local t = redis.call('TYPE', KEYS[i]).ok\n"
    "  if t ~= 'none' and t ~= 'string' then return 0 end\n"
    "end\n"
    "if redis.call('GET', KEYS[2]) ~= ARGV[1] then return 0 end\n"
    "redis.call('DEL', KEYS[1])\n"
    "return 1\n";

const char scripts_step_down[] =
    LEASE_KEYS_CHECKED
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"
    "local n = (tonumber(string.match(cur, '^%d+')) or 0) + 1\n"
    "redis.call('SET', KEYS[2], string.format('%d', n) .. ' step-down')\n"
    "redis.call('DEL', KEYS[1])\n"
    "return {'stepped', cur}\n";

const char scripts_requeue[] =
    "for i = 1, 2 do\n"
    "  local t = redis.call('TYPE', KEYS[i]).ok\n"
    "  if t ~= 'list' and t ~= 'none' then return {'wrongtype', KEYS[i], t} end\n"
    "end\n"
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('RPOP', KEYS[2])\n"
    "return 1\n";

const char scripts_types[] =
    "local r = {}\n"
    "for i, k in ipairs(KEYS) do r[i] = redis.call('TYPE', k) end\n"
    "return r\n";

const char scripts_scan[] =
    "return {redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1),\n"
    "        redis.call('LRANGE', KEYS[2], -tonumber(ARGV[1]), -1)}\n";
