"use strict";
/*
 * Redis connections from the settings: a server by host and port or unix
 * socket, the master that Redis Sentinel names (ioredis's own sentinel
 * support), or with Redis Cluster (clusterSeeds) the master of the slot of
 * the role's namespace or shard, as the seeds name it.
 *
 * Everything that opens a connection goes through a client factory: a
 * function of a connection's role ("worker", "heartbeat", "producer"; a
 * worker serving a namespace in shards asks for "worker#<i>" and
 * "heartbeat#<i>" for shard i; with clusterSeeds a producer of a namespace
 * in shards asks for "producer#<i>") that returns an ioredis client. Pass
 * your own to Worker or Producer to connect differently.
 *
 * Redis Cluster: every key of a namespace carries the hash tag {ns} ({ns#i}
 * for shard i), so all of a role's keys live in one slot, on one master. A
 * cluster client is a plain ioredis client whose connector, each time it
 * connects, asks the seeds in turn for CLUSTER SLOTS and connects to the
 * master of that slot (as slotd's src/dial.c does). A reply MOVED, ASK,
 * TRYAGAIN or CLUSTERDOWN (the command was not applied) fails its command
 * and reconnects, through the seeds again, as READONLY does after a
 * Sentinel failover.
 *
 * The clients never send a command twice: a command whose reply was lost
 * fails (maxRetriesPerRequest 0, autoResendUnfulfilledCommands false), and
 * the worker puts right what it may have done (link.js).
 */
const net = require("net");
const Redis = require("ioredis");
const StandaloneConnector = require("ioredis/built/connectors/StandaloneConnector").default;
const { keyslot } = require("./keyslot");

/** The longest a worker blocks in Redis waiting for a first task, in seconds. */
const BLOCK_S = 1;

/** The error replies after which a connection reconnects: the command was not applied. */
const RECONNECT_ON = /^(READONLY|MOVED |ASK |TRYAGAIN|CLUSTERDOWN)/;

const fmt = (host, port) => (host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`);

/**
 * The {host, port} of the master of slot, by CLUSTER SLOTS asked of each
 * seed in turn; rejects naming what each seed said.
 */
async function clusterMaster(seeds, slot, { username, password, connectTimeoutMs = 1000 } = {}) {
  const why = [];
  for (const s of seeds) {
    const at = fmt(s.host, s.port);
    const r = new Redis({
      host: s.host, port: s.port, username, password, lazyConnect: true, connectTimeout: connectTimeoutMs,
      commandTimeout: connectTimeoutMs, maxRetriesPerRequest: 0, retryStrategy: () => null,
      enableReadyCheck: false, enableOfflineQueue: false, disableClientInfo: true,
    });
    r.on("error", () => {});
    let got;
    try {
      await r.connect();
      got = await r.call("CLUSTER", "SLOTS");
    } catch (e) {
      why.push(`seed ${at}: ${e.message}`);
      continue;
    } finally {
      r.disconnect();
    }
    for (const e of got || []) {
      if (e[0] <= slot && slot <= e[1] && e[2]) {
        const host = String(e[2][0] || "");
        // An empty or "?" host: the node that answered (Redis 7).
        return { host: host && host !== "?" ? host : s.host, port: Number(e[2][1]) };
      }
    }
    why.push(`seed ${at}: nobody serves slot ${slot}`);
  }
  throw new Error(`Redis Cluster: no master for slot ${slot}: ${why.join("; ")}`);
}

/**
 * An ioredis Connector class that connects to the master of slot, looked up
 * from seeds at each connection. When no seed names one, the connection
 * fails as a refused one does (ioredis retries with retryStrategy).
 */
function clusterConnector(seeds, slot, auth) {
  return class ClusterSlotConnector extends StandaloneConnector {
    connect(eventEmitter) {
      this.connecting = true;
      return clusterMaster(seeds, slot, auth).then(
        ({ host, port }) => {
          if (!this.connecting) throw new Error("Connection is closed.");
          this.options.host = host;
          this.options.port = port;
          return super.connect(eventEmitter);
        },
        (err) => {
          if (!this.connecting) throw new Error("Connection is closed.");
          this.firstError = err;
          const dead = new net.Socket();
          dead.destroy();
          return dead;
        });
    }
  };
}

/** The hash tag of a role's keys: {ns}, or {ns#i} for a role of shard i ("worker#<i>"...). */
function roleTag(c, role) {
  const shard = role.split("#")[1];
  return shard === undefined ? `{${c.namespace}}` : `{${c.namespace}#${shard}}`;
}

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
      // A master that became a replica (a Sentinel failover), or with Redis
      // Cluster a node that no longer serves the slot: reconnect, through the
      // sentinels or the seeds to the master; the command is not resent.
      reconnectOnError: (err) => (RECONNECT_ON.test(String(err.message)) ? 1 : false),
      retryStrategy: (times) => {
        const d = Math.min(c.reconnectMinMs * 2 ** Math.min(times - 1, 20), c.reconnectMaxMs);
        return d - Math.floor(Math.random() * (d / 4));
      },
    };
    if (c.clusterSeeds && c.clusterSeeds.length) {
      opts.Connector = clusterConnector(c.clusterSeeds, keyslot(roleTag(c, role)), {
        username: opts.username, password: opts.password, connectTimeoutMs: c.connectTimeoutMs,
      });
    } else if (c.sentinels.length) {
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
  if (c.clusterSeeds && c.clusterSeeds.length) return `Redis Cluster via ${c.clusterSeeds.map((s) => fmt(s.host, s.port)).join(",")}`;
  if (c.sentinels.length) return `master ${c.sentinelMaster} via ${c.sentinels.map((s) => `${s.host}:${s.port}`).join(",")}`;
  if (c.unix) return `unix:${c.unix}`;
  return `${c.host}:${c.port}`;
}

module.exports = { BLOCK_S, clientFactory, clusterMaster, describe, Redis };
