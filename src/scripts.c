/*
 * scripts: the Lua slotd has Redis run (see scripts.h). Each checks first
 * and writes last, so that a check that fails leaves every key as it was.
 * docs/protocol.md shows them; a test checks that it shows them as they are.
 */
#include "scripts.h"

const char scripts_commit[] =
    "local n = tonumber(ARGV[1])\n"
    "local bad = nil\n"
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'list' and t ~= 'none' then\n"
    "  bad = {'wrongtype', KEYS[1], t}\n"
    "elseif redis.call('LLEN', KEYS[1]) < n then\n"
    "  bad = {'short', KEYS[1], redis.call('LLEN', KEYS[1])}\n"
    "end\n"
    "if not bad then\n"
    "  t = redis.call('TYPE', KEYS[2]).ok\n"
    "  if t ~= 'string' and t ~= 'none' then\n"
    "    bad = {'wrongtype', KEYS[2], t}\n"
    "  else\n"
    "    local v = redis.call('GET', KEYS[2]) or '0'\n"
    "    if v ~= ARGV[2] then bad = {'stale', KEYS[2], v} end\n"
    "  end\n"
    "end\n"
    "local pushed = {}\n"
    "for i = 3, #KEYS do\n"
    "  t = redis.call('TYPE', KEYS[i]).ok\n"
    "  pushed[i] = t == 'list'\n"
    "  if not pushed[i] and not bad then bad = {'wrongtype', KEYS[i], t} end\n"
    "end\n"
    "if bad then\n"
    "  for i = 3, #KEYS do\n"
    "    if pushed[i] then redis.call('LPOP', KEYS[i], ARGV[i]) end\n"
    "  end\n"
    "  return bad\n"
    "end\n"
    "redis.call('LTRIM', KEYS[1], 0, -n - 1)\n"
    "return redis.call('INCR', KEYS[2])\n";

const char scripts_apply[] =
    "#!lua flags=allow-oom\n"
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'string' and t ~= 'none' then return {'wrongtype', KEYS[1], t} end\n"
    "local v = redis.call('GET', KEYS[1]) or '0'\n"
    "if v ~= ARGV[1] then return {'stale', KEYS[1], v} end\n"
    "local i = 3\n"
    "for j = 1, tonumber(ARGV[2]) do\n"
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
