/*
 * scripts: the Lua slotd has Redis run (see scripts.h). Each checks first
 * and writes last, so that a check that fails leaves every key as it was.
 * docs/protocol.md shows them; a test checks that it shows them as they are.
 */
#include "scripts.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

int scripts_tail_parse(const char *v, size_t len, const char *token, uint64_t *version,
                       int *ours)
{
    size_t i = len;
    uint64_t n = 0, mul = 1;
    if (len == 0) {
        *version = 0;
        *ours = 0;
        return 0;
    }
    while (i > 0 && v[i - 1] >= '0' && v[i - 1] <= '9') {
        if (len - i >= 19)
            return -1;
        n += (uint64_t)(v[i - 1] - '0') * mul;
        mul *= 10;
        i--;
    }
    if (i == len || (i > 0 && v[i - 1] != ' '))
        return -1;
    size_t tlen = i > 0 ? i - 1 : 0;
    *version = n;
    *ours = token[0] != '\0' && strlen(token) == tlen && memcmp(v, token, tlen) == 0;
    return 0;
}

char *scripts_tail_format(char *buf, size_t cap, const char *token, uint64_t version)
{
    snprintf(buf, cap, "%s %" PRIu64, token, version);
    return buf;
}

const char scripts_commit[] =
    "local n = tonumber(ARGV[1])\n"
    "local bad = nil\n"
    "local v = redis.pcall('GET', KEYS[2])\n"
    "if type(v) == 'table' then\n"
    "  bad = {'wrongtype', KEYS[2], redis.call('TYPE', KEYS[2]).ok}\n"
    "elseif (v or '') ~= ARGV[2] then\n"
    "  bad = {'moved', KEYS[2], v or ''}\n"
    "else\n"
    "  local l = redis.pcall('LLEN', KEYS[1])\n"
    "  if type(l) == 'table' then\n"
    "    bad = {'wrongtype', KEYS[1], redis.call('TYPE', KEYS[1]).ok}\n"
    "  elseif l < n then\n"
    "    bad = {'short', KEYS[1], l}\n"
    "  end\n"
    "end\n"
    "local pushed = {}\n"
    "for i = 4, #KEYS do\n"
    "  pushed[i] = type(redis.pcall('LLEN', KEYS[i])) == 'number'\n"
    "  if not pushed[i] and not bad then\n"
    "    bad = {'wrongtype', KEYS[i], redis.call('TYPE', KEYS[i]).ok}\n"
    "  end\n"
    "end\n"
    "if bad then\n"
    "  for i = 4, #KEYS do\n"
    "    if pushed[i] then redis.call('LPOP', KEYS[i], ARGV[i]) end\n"
    "  end\n"
    "  return bad\n"
    "end\n"
    "redis.call('LTRIM', KEYS[1], 0, -n - 1)\n"
    "redis.pcall('HINCRBY', KEYS[3], string.match(ARGV[3], '^%d+'), n)\n"
    "redis.call('SET', KEYS[2], ARGV[3])\n"
    "return 1\n";

const char scripts_forward_peek[] =
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'none' and t ~= 'list' then return {'wrongtype', KEYS[1], t} end\n"
    "local d = redis.pcall('GET', KEYS[2])\n"
    "if type(d) == 'table' then return {'wrongtype', KEYS[2], redis.call('TYPE', KEYS[2]).ok} end\n"
    "return {d or '0', redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)}\n";

const char scripts_forward_in[] =
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'none' and t ~= 'list' then return {'wrongtype', KEYS[1], t} end\n"
    "t = redis.call('TYPE', KEYS[2]).ok\n"
    "if t ~= 'none' and t ~= 'hash' then return {'wrongtype', KEYS[2], t} end\n"
    "local o, n = tonumber(ARGV[2]), #ARGV - 2\n"
    "local e = tonumber(redis.call('HGET', KEYS[2], ARGV[1]) or '0') or 0\n"
    "local skip = math.max(0, e - o)\n"
    "if skip < n then redis.call('LPUSH', KEYS[1], unpack(ARGV, 3 + skip, 2 + n)) end\n"
    "if o + n > e then redis.call('HSET', KEYS[2], ARGV[1], string.format('%.0f', o + n)) end\n"
    "return math.max(n - skip, 0)\n";

const char scripts_forward_out[] =
    "local tail = redis.pcall('GET', KEYS[3])\n"
    "if type(tail) == 'table' then\n"
    "  return {'wrongtype', KEYS[3], redis.call('TYPE', KEYS[3]).ok}\n"
    "end\n"
    "if string.sub(tail or '', 1, #ARGV[3] + 1) ~= ARGV[3] .. ' ' then\n"
    "  return {'moved', KEYS[3], tail or ''}\n"
    "end\n"
    "local d = redis.pcall('GET', KEYS[2])\n"
    "if type(d) == 'table' then return {'wrongtype', KEYS[2], redis.call('TYPE', KEYS[2]).ok} end\n"
    "if (d or '0') ~= ARGV[1] then return {'moved', KEYS[2], d or '0'} end\n"
    "local t = redis.call('TYPE', KEYS[1]).ok\n"
    "if t ~= 'list' then return {'wrongtype', KEYS[1], t} end\n"
    "redis.call('LTRIM', KEYS[1], 0, -tonumber(ARGV[2]) - 1)\n"
    "redis.call('SET', KEYS[2], string.format('%.0f', tonumber(ARGV[1]) + tonumber(ARGV[2])))\n"
    "return 1\n";

const char scripts_apply[] =
    "#!lua flags=allow-oom\n"
    "local v = redis.pcall('GET', KEYS[1])\n"
    "if type(v) == 'table' then return {'wrongtype', KEYS[1], redis.call('TYPE', KEYS[1]).ok} end\n"
    "if (v or '') ~= ARGV[1] then return {'moved', KEYS[1], v or ''} end\n"
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
    "redis.call('SET', KEYS[1], ARGV[2])\n"
    "return {'ok', ARGV[2], out}\n";

const char scripts_acquire[] =
    "#!lua flags=allow-oom\n"
    "for i = 1, 4 do\n"
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
    "local tail = redis.call('GET', KEYS[4]) or ''\n"
    "redis.call('SET', KEYS[4], e .. ' ' .. (string.match(tail, '(%d+)$') or '0'))\n"
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
    "local t = redis.call('TYPE', KEYS[3]).ok\n"
    "if t ~= 'none' and t ~= 'string' then return {'wrongtype', KEYS[3], t} end\n"
    "local cur = redis.call('GET', KEYS[2]) or '0'\n"
    "local e = string.format('%d', (tonumber(string.match(cur, '^%d+')) or 0) + 1) .. ' step-down'\n"
    "redis.call('SET', KEYS[2], e)\n"
    "local tail = redis.call('GET', KEYS[3]) or ''\n"
    "redis.call('SET', KEYS[3], e .. ' ' .. (string.match(tail, '(%d+)$') or '0'))\n"
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

const char scripts_missing[] =
    "local r = {}\n"
    "for i = 2, #KEYS do\n"
    "  if redis.call('SISMEMBER', KEYS[1], ARGV[i - 1]) == 0 then r[i - 1] = 'left'\n"
    "  else r[i - 1] = redis.call('TYPE', KEYS[i]) end\n"
    "end\n"
    "return r\n";

const char scripts_scan[] =
    "return {redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1),\n"
    "        redis.call('LRANGE', KEYS[2], -tonumber(ARGV[1]), -1)}\n";
