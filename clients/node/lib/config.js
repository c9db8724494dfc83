"use strict";
/*
 * The YAML configuration shared with slotd (docs/configuration.md). A worker
 * or producer given slotd's own file reads what it needs from it: redis.*,
 * namespace, routing.*, workers.heartbeat_ttl_ms and the worker section.
 * Every key slotd knows is accepted; an unknown key, a quoted number, a
 * value out of range or of the wrong kind is an error naming
 * FILE:LINE:COLUMN as slotd does. Other keys (http, leader, ...) are checked
 * for their type and range only: `slotd -t` checks the rest.
 */
const fs = require("fs");
const path = require("path");

class ConfigError extends Error {
  constructor(message) {
    super(message);
    this.name = "ConfigError";
  }
}

// name: [kind, default, low, high] for integers, [kind, default, choices]
// for enumerations, [kind, default] for strings: the table of src/conf.c.
const KEYS = {
  "redis.host": ["str", "127.0.0.1"],
  "redis.port": ["int", 6379, 1, 65535],
  "redis.unix": ["str", ""],
  "redis.db": ["int", 0, 0, 100000],
  "redis.username": ["str", ""],
  "redis.password_file": ["str", ""],
  "redis.reconnect_min_ms": ["int", 100, 1, 60000],
  "redis.reconnect_max_ms": ["int", 5000, 1, 600000],
  "redis.connect_timeout_ms": ["int", 1000, 10, 600000],
  "redis.reply_timeout_ms": ["int", 3000, 100, 600000],
  "redis.sentinels": ["str", ""],
  "redis.sentinel_master": ["str", ""],
  "redis.sentinel_username": ["str", ""],
  "redis.sentinel_password_file": ["str", ""],
  "redis.cluster_seeds": ["str", ""],
  namespace: ["str", "slotd"],
  shards: ["int", 1, 1, 256],
  "routing.key_field": ["str", "key"],
  "routing.on_missing_key": ["enum", "dead_letter", ["dead_letter", "payload"]],
  "dispatch.batch": ["int", 2000, 1, 100000],
  "dispatch.inflight": ["int", 1, 1, 2],
  "dispatch.max_task_bytes": ["int", 1048576, 1, 536870912],
  "workers.check_interval_ms": ["int", 200, 10, 60000],
  "workers.heartbeat_ttl_ms": ["int", 3000, 100, 600000],
  "workers.max_recoveries": ["int", 3, 1, 1000],
  "log.level": ["enum", "info", ["error", "warn", "info", "debug"]],
  "http.listen": ["str", "127.0.0.1:9464"],
  "http.max_connections": ["int", 64, 1, 10000],
  "http.timeout_ms": ["int", 5000, 100, 600000],
  "http.request_deadline_ms": ["int", 10000, 100, 600000],
  "http.max_header_bytes": ["int", 8192, 1024, 1048576],
  "leader.lease_ms": ["int", 2000, 100, 600000],
  "leader.renew_ms": ["int", 500, 20, 60000],
  "leader.node": ["str", ""],
  "worker.prefetch": ["int", 16, 1, 10000],
  "worker.max_attempts": ["int", 3, 1, 1000],
  "worker.weight": ["int", 1, 1, 1000],
  "worker.retry_min_ms": ["int", 100, 1, 600000],
  "worker.retry_max_ms": ["int", 10000, 1, 3600000],
};

// The options a worker or producer takes, with their file key and range.
const OPTIONS = {
  host: ["redis.host"], port: ["redis.port"], unix: ["redis.unix"], db: ["redis.db"],
  username: ["redis.username"], password: [null], reconnectMinMs: ["redis.reconnect_min_ms"],
  reconnectMaxMs: ["redis.reconnect_max_ms"], connectTimeoutMs: ["redis.connect_timeout_ms"],
  replyTimeoutMs: ["redis.reply_timeout_ms"], sentinels: [null], sentinelMaster: ["redis.sentinel_master"],
  sentinelUsername: ["redis.sentinel_username"], sentinelPassword: [null], clusterSeeds: [null], namespace: ["namespace"],
  keyField: ["routing.key_field"], onMissingKey: ["routing.on_missing_key"],
  shards: ["shards"], maxTaskBytes: ["dispatch.max_task_bytes"],
  heartbeatTtlMs: ["workers.heartbeat_ttl_ms"], prefetch: ["worker.prefetch"], maxAttempts: ["worker.max_attempts"],
  weight: ["worker.weight"], retryMinMs: ["worker.retry_min_ms"], retryMaxMs: ["worker.retry_max_ms"],
  logLevel: ["log.level"],
};

const NULLS = new Set(["", "~", "null", "Null", "NULL"]);
const INT = /^-?[0-9]+$/;
const NAMESPACE = /^[A-Za-z0-9._:-]{1,64}$/;
const WORKER_ID = /^[A-Za-z0-9._-]{1,64}$/;

/** The defaults: every option at slotd's default. */
function defaults() {
  const c = { password: null, sentinels: [], sentinelPassword: null, clusterSeeds: [], values: {} };
  for (const [name, spec] of Object.entries(KEYS)) c.values[name] = spec[1];
  for (const [opt, [key]] of Object.entries(OPTIONS)) if (key) c[opt] = KEYS[key][1];
  return c;
}

/** "host:port,[::1]:26379" as [{host, port}]; at most 16 (also redis.cluster_seeds, what naming it). */
function parseSentinels(text, what = "redis.sentinels") {
  const out = [];
  for (const item of text.split(",").map((s) => s.trim()).filter(Boolean)) {
    const m = /^\[([^\]]+)\]:(\d+)$/.exec(item) || /^([^:[\]]+):(\d+)$/.exec(item);
    if (!m || +m[2] < 1 || +m[2] > 65535) throw new ConfigError(`${what}: '${item}' is not host:port`);
    out.push({ host: m[1], port: +m[2] });
  }
  if (out.length > 16) throw new ConfigError(`${what}: at most 16 addresses`);
  return out;
}

function readSecret(file, base) {
  let data = fs.readFileSync(path.isAbsolute(file) ? file : path.join(base, file));
  if (data.length > 65538) throw new Error("more than 64 KiB");
  if (data.length >= 2 && data[data.length - 2] === 13 && data[data.length - 1] === 10) data = data.subarray(0, -2);
  else if (data.length >= 1 && data[data.length - 1] === 10) data = data.subarray(0, -1);
  if (data.length === 0 || data.includes(0) || data.length > 65536)
    throw new Error("an empty password, a NUL byte or more than 64 KiB");
  return data.toString("utf8");
}

/** Reads slotd's YAML file at file. Throws ConfigError. */
function loadConfig(file) {
  const YAML = require("yaml");
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (e) {
    throw new ConfigError(`${file}: ${e.code === "ENOENT" ? "No such file or directory" : e.message}`);
  }
  const lc = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { schema: "failsafe", lineCounter: lc, uniqueKeys: false });
  const at = (node) => {
    if (!node || !node.range) return file;
    const p = lc.linePos(node.range[0]);
    return `${file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length) {
    const e = doc.errors[0];
    const where = e.linePos ? `${file}:${e.linePos[0].line}:${e.linePos[0].col}` : file;
    throw new ConfigError(`${where}: YAML syntax error: ${e.message.split("\n")[0]}`);
  }
  const c = defaults();
  const marks = {};
  const kindOf = (n) => (YAML.isSeq(n) ? "a sequence" : YAML.isMap(n) ? "a mapping" : "a scalar");

  function scalar(name, node) {
    const spec = KEYS[name];
    if (!YAML.isScalar(node)) throw new ConfigError(`${at(node)}: ${name} must be a scalar, not ${kindOf(node)}`);
    const plain = node.type === "PLAIN";
    let v = String(node.value);
    if (spec[0] === "int") {
      if (!plain || !INT.test(v)) {
        if (!plain && INT.test(v))
          throw new ConfigError(`${at(node)}: ${name}: '${v}' must be an integer, not a quoted string`);
        throw new ConfigError(`${at(node)}: ${name}: '${v}' is not an integer`);
      }
      const n = parseInt(v, 10);
      if (n < spec[2] || n > spec[3]) throw new ConfigError(`${at(node)}: ${name}: ${n} is out of range ${spec[2]}..${spec[3]}`);
      return n;
    }
    if (plain && NULLS.has(v)) v = "";
    if (spec[0] === "enum" && !spec[2].includes(v))
      throw new ConfigError(`${at(node)}: ${name}: '${v}' must be one of ${spec[2].join(", ")}`);
    return v;
  }

  function mapping(node, prefix) {
    const seen = {};
    for (const pair of node.items) {
      const k = pair.key;
      if (!YAML.isScalar(k)) throw new ConfigError(`${at(k)}: a key must be a scalar`);
      const name = prefix + String(k.value);
      if (seen[name]) {
        const p = lc.linePos(seen[name].range[0]);
        throw new ConfigError(`${at(k)}: duplicate key '${name}' (first at ${p.line}:${p.col})`);
      }
      seen[name] = k;
      const v = pair.value;
      if (name in KEYS) {
        c.values[name] = v == null ? scalar(name, { value: "", type: "PLAIN", range: k.range }) : scalar(name, v);
        marks[name] = v || k;
      } else if (!prefix && Object.keys(KEYS).some((x) => x.startsWith(name + "."))) {
        if (v == null || (YAML.isScalar(v) && v.type === "PLAIN" && NULLS.has(String(v.value)))) continue;
        if (!YAML.isMap(v)) throw new ConfigError(`${at(v)}: ${name} must be a mapping, not ${kindOf(v)}`);
        mapping(v, name + ".");
      } else {
        throw new ConfigError(`${at(k)}: unknown key '${name}'`);
      }
    }
  }

  const root = doc.contents;
  if (root != null && !(YAML.isScalar(root) && NULLS.has(String(root.value)))) {
    if (!YAML.isMap(root)) throw new ConfigError(`${at(root)}: the file must be a mapping of sections`);
    mapping(root, "");
  }
  const values = c.values;
  const fail = (name, why) => new ConfigError(`${marks[name] ? at(marks[name]) : file}: ${why}`);
  if (!NAMESPACE.test(values.namespace))
    throw fail("namespace", `namespace: '${values.namespace}' must be 1-64 of [A-Za-z0-9._:-]`);
  for (const [lo, hi] of [["redis.reconnect_min_ms", "redis.reconnect_max_ms"], ["worker.retry_min_ms", "worker.retry_max_ms"]]) {
    if (values[hi] < values[lo])
      throw fail(marks[hi] ? hi : lo, `${hi} (${values[hi]}) must be at least ${lo} (${values[lo]})`);
  }
  const base = path.dirname(path.resolve(file));
  for (const [key, opt] of [["redis.password_file", "password"], ["redis.sentinel_password_file", "sentinelPassword"]]) {
    if (!values[key]) continue;
    try {
      c[opt] = readSecret(values[key], base);
    } catch (e) {
      const why = e.code === "ENOENT" ? "No such file or directory" : e.code === "EACCES" ? "Permission denied" : e.message;
      throw fail(key, `${key}: cannot read '${values[key]}': ${why}`);
    }
  }
  try {
    c.sentinels = parseSentinels(values["redis.sentinels"]);
  } catch (e) {
    throw fail("redis.sentinels", e.message);
  }
  if (c.sentinels.length && !values["redis.sentinel_master"])
    throw fail("redis.sentinels", "redis.sentinels needs redis.sentinel_master: the name the sentinels know the master by");
  try {
    c.clusterSeeds = parseSentinels(values["redis.cluster_seeds"], "redis.cluster_seeds");
  } catch (e) {
    throw fail("redis.cluster_seeds", e.message);
  }
  if (c.clusterSeeds.length) {
    for (const [other, why] of [["redis.sentinels", "redis.cluster_seeds and redis.sentinels exclude each other"],
      ["redis.unix", "redis.cluster_seeds and redis.unix exclude each other"],
      ["redis.db", "redis.cluster_seeds needs redis.db 0: a Cluster has only database 0"]])
      if (values[other]) throw fail("redis.cluster_seeds", why);
  }
  for (const [opt, [key]] of Object.entries(OPTIONS)) if (key) c[opt] = values[key];
  return c;
}

/**
 * The settings of a worker or producer: the file options.config names (or
 * the defaults) with the other options put over it, checked.
 */
function makeConfig(options = {}) {
  const { config, ...rest } = options;
  const c = typeof config === "string" ? loadConfig(config) : config ? { ...defaults(), ...config } : defaults();
  for (const [name, value] of Object.entries(rest)) {
    if (value === undefined || value === null) continue;
    if (!(name in OPTIONS)) throw new TypeError(`unknown option '${name}'`);
    const list = { sentinels: "redis.sentinels", clusterSeeds: "redis.cluster_seeds" }[name];
    c[name] = list && typeof value === "string" ? parseSentinels(value, list) : value;
  }
  return checkConfig(c);
}

/** Checks the options' ranges and the rules between them; returns c. */
function checkConfig(c) {
  if (!NAMESPACE.test(c.namespace)) throw new ConfigError(`namespace '${c.namespace}': 1-64 of [A-Za-z0-9._:-]`);
  for (const [opt, [key]] of Object.entries(OPTIONS)) {
    const spec = key && KEYS[key];
    if (!spec) continue;
    const v = c[opt];
    if (spec[0] === "int" && (!Number.isInteger(v) || v < spec[2] || v > spec[3]))
      throw new ConfigError(`${opt}: ${v} is out of range ${spec[2]}..${spec[3]}`);
    if (spec[0] === "enum" && !spec[2].includes(v)) throw new ConfigError(`${opt} must be one of ${spec[2].join(", ")}`);
    if (spec[0] === "str" && typeof v !== "string") throw new ConfigError(`${opt} must be a string`);
  }
  if (c.retryMaxMs < c.retryMinMs) throw new ConfigError(`retryMaxMs (${c.retryMaxMs}) must be at least retryMinMs (${c.retryMinMs})`);
  if (c.reconnectMaxMs < c.reconnectMinMs)
    throw new ConfigError(`reconnectMaxMs (${c.reconnectMaxMs}) must be at least reconnectMinMs (${c.reconnectMinMs})`);
  if (c.sentinels.length && !c.sentinelMaster)
    throw new ConfigError("sentinels need sentinelMaster: the name the sentinels know the master by");
  if (c.clusterSeeds && c.clusterSeeds.length) {
    if (c.sentinels.length) throw new ConfigError("clusterSeeds and sentinels exclude each other");
    if (c.unix) throw new ConfigError("clusterSeeds and unix exclude each other");
    if (c.db !== 0) throw new ConfigError("clusterSeeds needs db 0: a Cluster has only database 0");
  }
  return c;
}

const validWorkerId = (id) => typeof id === "string" && WORKER_ID.test(id);

module.exports = { ConfigError, KEYS, loadConfig, makeConfig, parseSentinels, validWorkerId };
