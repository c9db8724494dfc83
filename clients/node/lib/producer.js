"use strict";
/*
 * Producer: pushes tasks onto slotd's intake (docs/protocol.md, *Producers*);
 * with shards above 1, onto the intake of each task's shard (docs/shards.md).
 *
 *   const p = new Producer({ config: "/etc/slotd/slotd.yaml" });
 *   await p.push({ key: "user:42", op: "charge", amount: 100 });
 *   await p.pushMany([{ key: "user:42", op: "refund" }, Buffer.from('{"key":"user:7"}')]);
 *   p.close();
 */
const { makeConfig } = require("./config");
const { keyslot, shardOfSlot } = require("./keyslot");
const { UNPARSED } = require("./link");
const redis = require("./redis");
const { routingKey } = require("./worker");

/**
 * The bytes of a task: a Buffer as it is, a string as UTF-8, anything else
 * as JSON; with key, the object's keyField is set to it first.
 */
function encodeTask(task, key, keyField = "key") {
  if (Buffer.isBuffer(task) || task instanceof Uint8Array) {
    if (key != null) throw new Error("key needs an object, not bytes");
    return Buffer.from(task);
  }
  if (typeof task === "string") {
    if (key != null) throw new Error("key needs an object, not a string");
    return Buffer.from(task, "utf8");
  }
  if (key != null) {
    if (task === null || typeof task !== "object" || Array.isArray(task)) throw new Error("key needs an object");
    if (!keyField) throw new Error("key needs routing.key_field (it is empty: the whole task is the key)");
    task = { ...task, [keyField]: key };
  }
  return Buffer.from(JSON.stringify(task), "utf8");
}

/**
 * The shard of a task's bytes by slotd's rule (docs/shards.md): the shard of
 * its routing key's slot; 0 for a task slotd cannot route (empty, larger
 * than maxTaskBytes, not JSON, or without a usable key under onMissingKey
 * dead_letter), which shard 0's slotd dead-letters.
 */
function taskShard(data, config) {
  const n = config.shards || 1;
  if (n <= 1 || data.length === 0 || data.length > config.maxTaskBytes) return 0;
  if (!config.keyField) return shardOfSlot(keyslot(data), n);
  let [key, parsed] = routingKey(data, config.keyField);
  if (key === null) {
    if (parsed === UNPARSED || config.onMissingKey !== "payload") return 0;
    key = data;
  }
  return shardOfSlot(keyslot(key), n);
}

/**
 * Pushes tasks onto {namespace}:intake, or with shards N above 1 onto
 * {namespace#i}:intake of each task's shard i. Options as for Worker: `config` (a
 * file or settings), settings by name (host, port, namespace, keyField, ...),
 * or your own `client` (ioredis) or `clientFactory`. With clusterSeeds and
 * shards, each shard's tasks go through its own client (the factory's
 * "producer#<i>"), to the master of that shard's slot.
 */
class Producer {
  constructor(options = {}) {
    const { client, clientFactory, ...settings } = options;
    this.config = makeConfig(settings);
    const factory = clientFactory || redis.clientFactory(this.config, "slotd-producer");
    const { namespace: ns, shards } = this.config;
    /** Each shard's client: one client for all unless on a Redis Cluster. */
    this.clients = !client && this.config.clusterSeeds.length && shards > 1
      ? Array.from({ length: shards }, (_, i) => factory(`producer#${i}`))
      : Array(Math.max(shards, 1)).fill(client || factory("producer"));
    /** The ioredis client pushes go through (shard 0's when split). */
    this.client = this.clients[0];
    /** Each shard's intake: [{ns}:intake] when not split. */
    this.intakes = shards > 1 ? Array.from({ length: shards }, (_, i) => `{${ns}#${i}}:intake`) : [`{${ns}}:intake`];
    /** The intake's key (shard 0's when split). */
    this.intake = this.intakes[0];
  }

  /** The shard the task goes to (see taskShard); 0 when not split. */
  shardOf(task, key) {
    return taskShard(encodeTask(task, key, this.config.keyField), this.config);
  }

  /** Pushes one task onto its shard's intake; resolves to that intake's length. */
  async push(task, key) {
    const data = encodeTask(task, key, this.config.keyField);
    const s = taskShard(data, this.config);
    return Number(await this.clients[s].lpush(this.intakes[s], data));
  }

  /**
   * Pushes tasks in order (the first is routed first): each shard's in the
   * order given, so every key's, up to chunk per LPUSH, pipelined (one
   * connection per shard: ioredis sends the commands in the order made);
   * resolves to how many.
   */
  async pushMany(tasks, chunk = 1000) {
    const pending = [];
    const batches = this.intakes.map(() => []);
    let n = 0;
    const flush = (s) => {
      pending.push(this.clients[s].lpush(this.intakes[s], ...batches[s]));
      n += batches[s].length;
      batches[s] = [];
    };
    for (const t of tasks) {
      const data = encodeTask(t, null, this.config.keyField);
      const s = taskShard(data, this.config);
      batches[s].push(data);
      if (batches[s].length >= chunk) flush(s);
    }
    for (let s = 0; s < batches.length; s++) if (batches[s].length) flush(s);
    await Promise.all(pending);
    return n;
  }

  /** Closes the clients' connections. */
  close() {
    for (const c of new Set(this.clients)) c.disconnect();
  }
}

module.exports = { Producer, encodeTask, taskShard };
