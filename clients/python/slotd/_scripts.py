"""The Lua scripts of libslotd (src/slotd_worker.c), text for text.

They are part of the protocol (docs/protocol.md, *Workers*): the same text
means the same SHA1 in Redis's script cache as the C workers, and the test
suite checks each one against src/slotd_worker.c. Edit them there first.
"""

# Scripts that only move tasks between lists, or write the heartbeat, may
# run over maxmemory (Redis 7 script flags).
ALLOW_OOM = "#!lua flags=allow-oom\n"

CHECK_TYPES = (
    "local function wrong(k, want)\n"
    "  local t = redis.call('TYPE', k).ok\n"
    "  if t ~= 'none' and t ~= want then return k .. ' holds a ' .. t .. ', not a ' .. want end\n"
    "end\n"
)

#: KEYS queue, inflight, attempts; ARGV n. Answers {tasks oldest first, HLEN attempts}.
TAKE = ALLOW_OOM + CHECK_TYPES + (
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "local t = redis.call('LRANGE', KEYS[1], -tonumber(ARGV[1]), -1)\n"
    "local h = redis.call('HLEN', KEYS[3])\n"
    "local n = #t\n"
    "local r = {}\n"
    "for i = n, 1, -1 do r[#r + 1] = t[i] end\n"
    "if n > 0 then\n"
    "  for i = 1, n, 1000 do\n"
    "    redis.call('LPUSH', KEYS[2], unpack(r, i, math.min(i + 999, n)))\n"
    "  end\n"
    "  redis.call('LTRIM', KEYS[1], 0, -n - 1)\n"
    "end\n"
    "return {r, h}\n"
)

#: KEYS inflight, attempts; ARGV k, the k tasks, the fingerprints to clear.
ACK = CHECK_TYPES + (
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "local k = tonumber(ARGV[1])\n"
    "local tail = redis.call('LRANGE', KEYS[1], -k, -1)\n"
    "local found = -1\n"
    "if #tail == k then\n"
    "  local left = {}\n"
    "  for i = 2, k + 1 do left[ARGV[i]] = (left[ARGV[i]] or 0) + 1 end\n"
    "  found = k\n"
    "  for i = 1, k do\n"
    "    local c = left[tail[i]]\n"
    "    if c == nil or c == 0 then found = -1 break end\n"
    "    left[tail[i]] = c - 1\n"
    "  end\n"
    "  if found == k then redis.call('LTRIM', KEYS[1], 0, -k - 1) end\n"
    "end\n"
    "if found < 0 then\n"
    "  found = 0\n"
    "  for i = 2, k + 1 do found = found + redis.call('LREM', KEYS[1], -1, ARGV[i]) end\n"
    "end\n"
    "for i = k + 2, #ARGV do redis.call('HDEL', KEYS[2], ARGV[i]) end\n"
    "return found\n"
)

#: KEYS dead, inflight, attempts; ARGV the entry, the task, its fingerprint.
DEAD = CHECK_TYPES + (
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "redis.call('LPUSH', KEYS[1], ARGV[1])\n"
    "redis.call('LREM', KEYS[2], 1, ARGV[2])\n"
    "redis.call('HDEL', KEYS[3], ARGV[3])\n"
    "return 1\n"
)

#: KEYS inflight, queue, attempts; ARGV the length read (-1: any), how many
#: of the oldest to keep, then fingerprints whose attempt goes up.
RECOVER = ALLOW_OOM + CHECK_TYPES + (
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'hash')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "local n = redis.call('LLEN', KEYS[1])\n"
    "if ARGV[1] ~= '-1' and n ~= tonumber(ARGV[1]) then\n"
    "  return redis.error_reply('CHANGED ' .. KEYS[1] .. ' changed while it was read')\n"
    "end\n"
    "local m = n - tonumber(ARGV[2])\n"
    "for i = 1, m do redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') end\n"
    "for i = 3, #ARGV do redis.pcall('HINCRBY', KEYS[3], ARGV[i], 1) end\n"
    "return m\n"
)

#: KEYS hb, workers; ARGV the heartbeat's value, its TTL in ms, the id.
BEAT = ALLOW_OOM + CHECK_TYPES + (
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])\n"
    "local bad = wrong(KEYS[2], 'set')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "redis.call('SADD', KEYS[2], ARGV[3])\n"
    "return 1\n"
)

#: KEYS inflight, queue, workers, hb; ARGV the id.
LEAVE = ALLOW_OOM + CHECK_TYPES + (
    "local bad = wrong(KEYS[1], 'list') or wrong(KEYS[2], 'list') or wrong(KEYS[3], 'set')\n"
    "if bad then return redis.error_reply('WRONGTYPE ' .. bad) end\n"
    "while redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do end\n"
    "redis.call('SREM', KEYS[3], ARGV[1])\n"
    "redis.call('DEL', KEYS[4])\n"
    "return 1\n"
)

#: The name each has in src/slotd_worker.c, for the test that compares them.
BY_C_NAME = {
    "take_script": TAKE,
    "ack_script": ACK,
    "dead_script": DEAD,
    "recover_script": RECOVER,
    "beat_script": BEAT,
    "leave_script": LEAVE,
}
