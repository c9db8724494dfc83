"use strict";
/*
 * Redis connections from the settings: a server by host and port or unix
 * socket, or the master that Redis Sentinel names (ioredis's own sentinel
 * support).
 *
 * Everything that opens a connection goes through a client factory: a
 * function of a connection's role ("worker", "heartbeat", "producer"; a
 * worker serving a namespace in shards asks for "worker#<i>" and
 * "heartbeat#<i>" for shard i) that returns an ioredis client. Pass your own to Worker or Producer to connect
 * differently. This is where shards of a Redis Cluster will plug in: every
 * key of one namespace carries the hash tag {ns}, so a cluster client sends
 * all of them to the one node that owns that slot.
 *
 * The clients never send a command twice: a command whose reply was lost
 * fails (maxRetriesPerRequest 0, autoResendUnfulfilledCommands false), and
 * the worker puts right what it may have done (link.js).
 */
const Redis = require("ioredis");

/** The longest a worker blocks in Redis waiting for a first task, in seconds. */
const BLOCK_S = 1;

/**
 * The default factory for settings c: clients named `${name}` (plus
 * `:${role}`); a shard's as libslotd names them: `${name}#<i>` and
 * `${name}#<i>:heartbeat`.
 */
function clientFactory(c, name) {
  return (role) => {
    const [base, shard] = role.split("#");
    const named = shard === undefined ? name : `${name}#${shard}`;
    const opts = {
      db: c.db,
      username: c.username || undefined,
      password: c.password == null ? undefined : c.password,
      connectionName: base === "worker" ? named : `${named}:${base}`,
      connectTimeout: c.connectTimeoutMs,
      socketTimeout: c.replyTimeoutMs + BLOCK_S * 1000,
      maxRetriesPerRequest: 0,
      autoResendUnfulfilledCommands: false,
      // The ready check (INFO) stays on: without it ioredis 5.11 can call a
      // connection killed during its CLIENT SETNAME ready, and then queue
      // every command forever. An ACL user without +info only makes ioredis
      // print a warning at each connection and skip the check.
      enableReadyCheck: true,
      disableClientInfo: true,
      lazyConnect: true,
      // A master that became a replica (a Sentinel failover): reconnect,
      // through the sentinels to the new master; the command is not resent.
      reconnectOnError: (err) => (String(err.message).startsWith("READONLY") ? 1 : false),
      retryStrategy: (times) => {
        const d = Math.min(c.reconnectMinMs * 2 ** Math.min(times - 1, 20), c.reconnectMaxMs);
        return d - Math.floor(Math.random() * (d / 4));
      },
    };
    if (c.sentinels.length) {
      Object.assign(opts, {
        sentinels: c.sentinels,
        name: c.sentinelMaster,
        sentinelUsername: c.sentinelUsername || undefined,
        sentinelPassword: c.sentinelPassword == null ? undefined : c.sentinelPassword,
      });
    } else if (c.unix) {
      opts.path = c.unix;
    } else {
      opts.host = c.host;
      opts.port = c.port;
    }
    const client = new Redis(opts);
    // Failures reach the caller through its commands; no unhandled events.
    client.on("error", () => {});
    return client;
  };
}

/** Where the settings point, for log lines. */
function describe(c) {
  if (c.sentinels.length) return `master ${c.sentinelMaster} via ${c.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}`;
  if (c.unix) return `unix:${c.unix}`;
  return `${c.host}:${c.port}`;
}

module.exports = { BLOCK_S, clientFactory, describe, Redis };
