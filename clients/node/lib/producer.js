"use strict";
/*
 * Producer: pushes tasks onto slotd's intake (docs/protocol.md, *Producers*).
 *
 *   const p = new Producer({ config: "/etc/slotd/slotd.yaml" });
 *   await p.push({ key: "user:42", op: "charge", amount: 100 });
 *   await p.pushMany([{ key: "user:42", op: "refund" }, Buffer.from('{"key":"user:7"}')]);
 *   p.close();
 */
const { makeConfig } = require("./config");
const redis = require("./redis");

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
 * Pushes tasks onto {namespace}:intake. Options as for Worker: `config` (a
 * file or settings), settings by name (host, port, namespace, keyField, ...),
 * or your own `client` (ioredis) or `clientFactory`.
 */
class Producer {
  constructor(options = {}) {
    const { client, clientFactory, ...settings } = options;
    this.config = makeConfig(settings);
    /** The ioredis client pushes go through. */
    this.client = client || (clientFactory || redis.clientFactory(this.config, "slotd-producer"))("producer");
    /** The intake's key. */
    this.intake = `{${this.config.namespace}}:intake`;
  }

  /** Pushes one task; resolves to the intake's length. */
  async push(task, key) {
    return Number(await this.client.lpush(this.intake, encodeTask(task, key, this.config.keyField)));
  }

  /** Pushes tasks in order (the first is routed first), up to chunk per LPUSH, pipelined; resolves to how many. */
  async pushMany(tasks, chunk = 1000) {
    const pending = [];
    let batch = [];
    let n = 0;
    for (const t of tasks) {
      batch.push(encodeTask(t, null, this.config.keyField));
      if (batch.length >= chunk) {
        pending.push(this.client.lpush(this.intake, ...batch));
        n += batch.length;
        batch = [];
      }
    }
    if (batch.length) {
      pending.push(this.client.lpush(this.intake, ...batch));
      n += batch.length;
    }
    await Promise.all(pending);
    return n;
  }

  /** Closes the client's connection. */
  close() {
    this.client.disconnect();
  }
}

module.exports = { Producer, encodeTask };
