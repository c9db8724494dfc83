"use strict";
// The pure parts: the scripts are libslotd's, key to slot, the config file,
// dead-letter entries, routing keys, fingerprints.
const test = require("node:test");
const assert = require("node:assert/strict");
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const { execFileSync } = require("child_process");
const slotd = require("..");
const { fingerprintSlow } = require("../lib/link");
const { ROOT, buildDir, withEnv } = require("./helpers");

/** Each script of src/slotd_worker.c: its C string literals joined, its macros expanded. */
function cScripts() {
  const src = fs.readFileSync(path.join(ROOT, "src", "slotd_worker.c"), "utf8");
  const literal = (text) => [...text.matchAll(/"((?:[^"\\]|\\.)*)"/g)].map((m) => JSON.parse(`"${m[1]}"`)).join("");
  const macros = {};
  for (const name of ["ALLOW_OOM", "CHECK_TYPES"]) {
    const m = new RegExp(`#define ${name} ((?:.*\\\\\\n)*.*)\\n`).exec(src);
    assert.ok(m, name);
    macros[name] = literal(m[1]);
  }
  const out = {};
  for (const m of src.matchAll(/static const char (\w+)\[\] =\n([\s\S]*?);\n/g)) {
    const body = m[2];
    const head = body.split('"')[0];
    out[m[1]] = (head.match(/ALLOW_OOM|CHECK_TYPES/g) || []).map((w) => macros[w]).join("") + literal(body.slice(head.length));
  }
  return out;
}

test("the scripts are libslotd's, text for text", () => {
  const c = cScripts();
  for (const [name, text] of Object.entries(slotd.scripts.BY_C_NAME)) assert.equal(text, c[name], `${name} differs from src/slotd_worker.c`);
  assert.equal(Object.keys(slotd.scripts.BY_C_NAME).length, 6);
  assert.ok(slotd.scripts.TAKE.startsWith("#!lua flags=allow-oom\n"));
  assert.ok(!slotd.scripts.ACK.startsWith("#!lua"));
});

test("key to slot: known answers", () => {
  assert.equal(slotd.crc16(Buffer.from("123456789")), 0x31c3);
  assert.equal(slotd.keyslot("somekey"), 11058);
  assert.equal(slotd.keyslot("foo{hash_tag}"), 2515);
  assert.equal(slotd.keyslot("bar{hash_tag}"), 2515);
  assert.equal(slotd.keyslot("foo{{bar}}zap"), slotd.keyslot("{bar"));
  assert.equal(slotd.keyslot(""), 0);
});

test("key to slot agrees with slotctl", async () => {
  await withEnv(async (env) => {
    for (const key of ["user:42", "{user:42}.orders", "café", "a{b}c", "{}x", "x{y", "ключ"]) {
      const out = execFileSync(path.join(buildDir(), "slotctl"), ["-c", env.conf, "keyslot", "--", key], { encoding: "utf8" });
      assert.equal(slotd.keyslot(key), +/slot (\d+)/.exec(out)[1], key);
    }
  });
});

test("the shard of a task: known answers (docs/shards.md, route_shard's unit test)", () => {
  const c4 = slotd.makeConfig({ shards: 4 });
  const shardOf = (task, c = c4) => slotd.taskShard(Buffer.from(task), c);
  for (const [key, slot, shard] of [["foo", 12182, 2], ["bar", 5061, 1], ["user:42", 15880, 3], ["user:7", 2780, 0],
    ["order:1001", 241, 0], ["{user1000}.following", 3443, 0], ["x{}{y}", 14166, 3]]) {
    assert.equal(slotd.keyslot(key), slot, key);
    assert.equal(shardOf(JSON.stringify({ key })), shard, key);
  }
  for (const [slot, n2, n3, n8] of [[0, 0, 0, 0], [2047, 0, 0, 0], [2048, 0, 0, 1], [5461, 0, 0, 2], [5462, 0, 1, 2],
    [8191, 0, 1, 3], [8192, 1, 1, 4], [10922, 1, 1, 5], [10923, 1, 2, 5], [14335, 1, 2, 6], [14336, 1, 2, 7], [16383, 1, 2, 7]])
    assert.deepEqual([2, 3, 8].map((n) => slotd.shardOfSlot(slot, n)), [n2, n3, n8], String(slot));
  assert.equal(shardOf('{"key":"k69207"}', slotd.makeConfig({ shards: 3 })), 2); // slot 10923
  for (const bad of ["", '{"key":', "[1]", '{"id":"user:42"}', '{"key":null}']) assert.equal(shardOf(bad), 0, bad);
  assert.equal(slotd.taskShard(Buffer.from([0xff]), c4), 0);
  assert.equal(shardOf('{"key":"user:42"}', slotd.makeConfig({ shards: 4, maxTaskBytes: 5 })), 0);
  const payload = slotd.makeConfig({ shards: 4, onMissingKey: "payload" });
  assert.equal(shardOf('{"id":"user:42"}', payload), slotd.shardOfSlot(slotd.keyslot('{"id":"user:42"}'), 4));
  assert.equal(shardOf('{"key":', payload), 0);
  assert.equal(shardOf("user:42", slotd.makeConfig({ shards: 4, keyField: "" })), 3);
  assert.equal(shardOf('{"key":"user:42"}', slotd.makeConfig({})), 0);
  assert.equal(shardOf('{"key":12}'), slotd.shardOfSlot(slotd.keyslot("12"), 4));
});

test("fingerprints: 64-bit FNV-1a", () => {
  assert.equal(slotd.fingerprint(Buffer.alloc(0)), "cbf29ce484222325");
  assert.equal(slotd.fingerprint(Buffer.from("a")), "af63dc4c8601ec8c");
  for (let i = 0; i < 500; i++) {
    const b = crypto.randomBytes(i % 300);
    assert.equal(slotd.fingerprint(b), fingerprintSlow(b));
  }
});

test("routing keys as slotd finds them", () => {
  const rk = (t, f = "key") => {
    const k = slotd.routingKey(Buffer.from(t), f)[0];
    return k === null ? null : k.toString("utf8");
  };
  assert.equal(rk('{"key":"user:42","x":1}'), "user:42");
  assert.equal(rk('{"k\\u0065y":"x"}'), "x");
  assert.equal(rk('{"key":"caf\\u00e9"}'), "café");
  assert.equal(rk('{"key":1e3}'), "1e3");
  assert.equal(rk('{"a":{"key":1},"key": -0.50 ,"b":[1,{"c":"}"}]}'), "-0.50");
  assert.equal(rk('{"key":1,"key":2E+1}'), "2E+1");
  assert.equal(rk('{"id":1}'), null);
  assert.equal(rk("[1,2]"), null);
  assert.equal(rk('{"key":"a"}', ""), null);
  assert.equal(rk('{"user":"u1"}', "user"), "u1");
});

test("the sample configuration is all defaults", () => {
  const c = slotd.loadConfig(path.join(ROOT, "conf", "slotd.yaml"));
  const d = slotd.makeConfig();
  for (const k of Object.keys(d)) if (k !== "values") assert.deepEqual(c[k], d[k], k);
  assert.equal(c.prefetch, 16);
});

test("configuration errors name FILE:LINE:COLUMN", () => {
  const dir = fs.mkdtempSync(path.join(require("os").tmpdir(), "slotd-conf-"));
  const file = path.join(dir, "slotd.yaml");
  const cases = [
    ["redis:\n  hots: x\n", ":2:3: unknown key 'redis.hots'"],
    ['redis:\n  port: "6379"\n', ":2:9: redis.port: '6379' must be an integer, not a quoted string"],
    ["redis:\n  port: abc\n", ":2:9: redis.port: 'abc' is not an integer"],
    ["dispatch:\n  batch: 0\n", ":2:10: dispatch.batch: 0 is out of range 1..100000"],
    ["redis:\n  port: 1\n  port: 2\n", ":3:3: duplicate key 'redis.port' (first at 2:3)"],
    ["redis: 5\n", ":1:8: redis must be a mapping, not a scalar"],
    ["routing:\n  on_missing_key: drop\n", "routing.on_missing_key: 'drop' must be one of dead_letter, payload"],
    ["worker:\n  retry_min_ms: 500\n  retry_max_ms: 100\n", ":3:17: worker.retry_max_ms (100) must be at least worker.retry_min_ms (500)"],
    ["redis:\n  sentinels: a:1\n", "redis.sentinels needs redis.sentinel_master"],
    ["redis:\n  password_file: nope\n", ":2:18: redis.password_file: cannot read 'nope'"],
  ];
  try {
    for (const [text, want] of cases) {
      fs.writeFileSync(file, text);
      assert.throws(() => slotd.loadConfig(file), (e) => {
        assert.ok(e instanceof slotd.ConfigError, e.message);
        assert.ok(e.message.startsWith(file) && e.message.includes(want), `${e.message} lacks ${want}`);
        return true;
      });
    }
    fs.writeFileSync(path.join(dir, "pw"), "s3cret\n");
    fs.writeFileSync(file, "redis:\n  port: 06380\n  password_file: pw\n  username: ~\n  sentinels: \"h1:26379,[::1]:26380\"\n" +
      "  sentinel_master: m\nnamespace: jobs\nrouting:\n  key_field: user\nworker:\n  prefetch: 64\nlog:\n");
    const c = slotd.loadConfig(file);
    assert.deepEqual([c.port, c.password, c.username, c.namespace, c.keyField, c.prefetch], [6380, "s3cret", "", "jobs", "user", 64]);
    assert.deepEqual(c.sentinels, [{ host: "h1", port: 26379 }, { host: "::1", port: 26380 }]);
    const o = slotd.makeConfig({ config: file, prefetch: 8, namespace: "other" });
    assert.deepEqual([o.prefetch, o.namespace, o.port], [8, "other", 6380]);
    assert.throws(() => slotd.makeConfig({ prefetch: 0 }), slotd.ConfigError);
    assert.throws(() => slotd.makeConfig({ prefetchh: 1 }), TypeError);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test("dead-letter entries", () => {
  let e = JSON.parse(slotd.formatEntry("failed", "boom", Buffer.from('{"id":7}'), 1764000000000));
  assert.deepEqual(e, { reason: "failed", detail: "boom", at_ms: 1764000000000, task: '{"id":7}' });
  assert.deepEqual(Object.keys(e), ["reason", "detail", "at_ms", "task"]);
  const raw = slotd.formatEntry("failed", Buffer.from([0x61, 0x62, 0xff, 0x63, 0xe2, 0x82]), Buffer.from([0xff, 0, 0x78]), 1);
  e = JSON.parse(raw);
  assert.equal(e.task_base64, Buffer.from([0xff, 0, 0x78]).toString("base64"));
  assert.equal(e.detail, "ab\ufffdc\ufffd\ufffd");
  assert.deepEqual(Buffer.from(e.detail_base64, "base64"), Buffer.from([0x61, 0x62, 0xff, 0x63, 0xe2, 0x82]));
  const back = slotd.parseEntry(raw);
  assert.deepEqual(back.task, Buffer.from([0xff, 0, 0x78]));
  e = JSON.parse(slotd.formatEntry("failed", "a\0b", Buffer.from("x\0y"), 1));
  assert.equal(e.task, "x\0y");
  assert.ok("detail_base64" in e);
  const ctrl = Buffer.alloc(31 * 200, 0).map((_, i) => 1 + (i % 31));
  e = JSON.parse(slotd.formatEntry("failed", "", ctrl, 1));
  assert.deepEqual(Buffer.from(e.task_base64, "base64"), ctrl);
  // The same bytes as the Python library writes.
  assert.equal(slotd.formatEntry("failed", "é\n\t\"\\\u0001", Buffer.from("ü\u0000\u001f"), 5).toString(),
    '{"reason":"failed","detail":"é\\n\\t\\"\\\\\\u0001","at_ms":5,"task":"ü\\u0000\\u001f"}');
});

test("the types compile (tsc, strict)", () => {
  const tsc = path.join(__dirname, "..", "node_modules", "typescript", "bin", "tsc");
  execFileSync(process.execPath, [tsc, "-p", path.join(__dirname, "tsconfig.json")], { stdio: "pipe" });
});

test("the config table is slotd's", () => {
  // Every key of src/conf.c, with its kind, default and range, and no other.
  const src = fs.readFileSync(path.join(ROOT, "src", "conf.c"), "utf8");
  const table = {};
  for (const m of src.matchAll(/^\s+(STR|INT|ENUM)\("([a-z_.]+)", [\w.]+, "((?:[^"\\]|\\.)*)"(?:, (-?\d+), (-?\d+))?/gm)) {
    const kind = m[1].toLowerCase();
    let d = m[3].replace(/\\"/g, '"');
    if (d === '""') d = "";
    table[m[2]] = kind === "int" ? [kind, +d, +m[4], +m[5]] : [kind, d];
  }
  const { KEYS } = require("../lib/config");
  const ours = Object.fromEntries(Object.entries(KEYS).map(([k, v]) => [k, v[0] === "int" ? v : v.slice(0, 2)]));
  assert.deepEqual(ours, table);
});
