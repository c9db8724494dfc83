// Types of the slotd package (lib/*.js). Checked by `npm run typecheck`
// against test/types.ts.
import type Redis from "ioredis";

/** The settings a worker or producer uses; every one at slotd's default unless set. */
export interface Settings {
  host: string;
  port: number;
  /** A unix socket path; when set, used instead of host and port. */
  unix: string;
  db: number;
  username: string;
  password: string | null;
  reconnectMinMs: number;
  reconnectMaxMs: number;
  connectTimeoutMs: number;
  replyTimeoutMs: number;
  /** Redis Sentinel: the sentinels to ask (empty: connect directly). */
  sentinels: { host: string; port: number }[];
  sentinelMaster: string;
  sentinelUsername: string;
  sentinelPassword: string | null;
  /**
   * Redis Cluster: the seed nodes to ask for CLUSTER SLOTS (empty: not a
   * cluster). Each namespace (shard) goes to the master of its slot.
   */
  clusterSeeds: { host: string; port: number }[];
  namespace: string;
  /** The top-level JSON field holding the routing key; "" hashes the whole task. */
  keyField: string;
  onMissingKey: "dead_letter" | "payload";
  /**
   * The namespace in this many shards (docs/shards.md); 1: not split. A
   * producer pushes each task to its shard; a worker serves every shard.
   */
  shards: number;
  maxTaskBytes: number;
  heartbeatTtlMs: number;
  /** Most tasks held (taken, not yet acknowledged) at once. */
  prefetch: number;
  /** Runs of a failing task before it is dead-lettered. */
  maxAttempts: number;
  weight: number;
  retryMinMs: number;
  retryMaxMs: number;
  logLevel: "error" | "warn" | "info" | "debug";
}

/** The settings as read from a file: with every key of the file by its dotted name. */
export interface Config extends Settings {
  values: Record<string, string | number>;
}

/** Options common to Worker and Producer: a file (or settings), settings over it. */
export type ConnectOptions = Partial<Omit<Settings, "sentinels" | "clusterSeeds">> & {
  /** slotd's YAML file, or settings. */
  config?: string | Partial<Settings>;
  /** "host:port,host:port" or a list. */
  sentinels?: string | { host: string; port: number }[];
  /** Redis Cluster's seeds: "host:port,host:port" or a list. */
  clusterSeeds?: string | { host: string; port: number }[];
  /**
   * Makes the Redis clients: a function of a role ("worker", "heartbeat",
   * "producer"; a worker serving shards asks for "worker#<i>" and
   * "heartbeat#<i>" for shard i; with clusterSeeds, a producer of a
   * namespace in shards asks for "producer#<i>").
   */
  clientFactory?: (role: string) => Redis;
};

export interface Logger {
  error(msg: string): void;
  warn(msg: string): void;
  info(msg: string): void;
  debug(msg: string): void;
}

/** A task taken from the worker's queue. */
export class Task {
  constructor(data: Buffer, attempt?: number);
  /** The task's bytes, exactly as pushed. */
  data: Buffer;
  /** 1 the first time it runs; plus one per worker that died or restarted holding it, plus retries here. */
  attempt: number;
  /** The routing key's bytes, or null when the whole task is hashed. */
  key: Buffer | null;
  /** The slot, 0..16383. */
  slot: number;
  /** The id of the worker running it. */
  workerId: string;
  /** The task parsed as JSON (throws if it is not JSON). */
  readonly json: any;
  /** The task's bytes as UTF-8 text. */
  readonly text: string;
}

/** Runs for each task; resolving acknowledges it, throwing or rejecting fails it (retried, then dead-lettered). */
export type Handler = (task: Task) => unknown | Promise<unknown>;

export interface WorkerOptions extends ConnectOptions {
  /** The worker id: 1-64 of [A-Za-z0-9._-]. */
  id: string;
  /** Handlers at once, never two of one slot. Default 1. */
  concurrency?: number;
  logger?: Logger;
  /** SIGTERM and SIGINT stop the worker gracefully. Default true. */
  handleSignals?: boolean;
}

/**
 * A slotd worker: per-key order, parallelism across slots, retries, dead
 * letters, graceful leave. With `shards` above 1 it serves every shard:
 * registered with its id in each, taking from each in turn, settling each
 * task in the shard it came from, leaving every one.
 */
export class Worker {
  constructor(handler: Handler, options: WorkerOptions);
  constructor(options: WorkerOptions);
  readonly id: string;
  readonly config: Settings;
  readonly concurrency: number;
  /** Tasks acknowledged since start. */
  acked: number;
  /** Tasks dead-lettered since start. */
  deadLettered: number;
  /** Sets the handler; returns it. */
  handler<H extends Handler>(fn: H): H;
  /** Registers, works until stop() or SIGTERM/SIGINT, then leaves gracefully. */
  run(): Promise<void>;
  /** Finishes what runs, gives back what it holds, and leaves. */
  stop(): void;
  on(event: "acked", listener: (tasks: Task[]) => void): this;
  on(event: "deadLettered", listener: (task: Task, detail: string) => void): this;
}

/** Anything a producer can push: bytes, text, or a value sent as JSON. */
export type TaskLike = Buffer | Uint8Array | string | Record<string, unknown> | unknown[];

export interface ProducerOptions extends ConnectOptions {
  /** An ioredis client to push through. */
  client?: Redis;
}

/** Pushes tasks onto {namespace}:intake, or with shards > 1 onto each task's shard's {namespace#i}:intake. */
export class Producer {
  constructor(options?: ProducerOptions);
  readonly config: Settings;
  readonly client: Redis;
  /** Each shard's client (the same one for all unless on a Redis Cluster). */
  readonly clients: Redis[];
  /** Each shard's intake ([{namespace}:intake] when not split). */
  readonly intakes: string[];
  /** The intake (shard 0's when split). */
  readonly intake: string;
  /** The shard the task goes to (0 when not split). */
  shardOf(task: TaskLike, key?: string | number): number;
  /** Pushes one task (with key, the object's key field set to it) onto its shard's intake; resolves to its length. */
  push(task: TaskLike, key?: string | number): Promise<number>;
  /** Pushes tasks in order per shard (so per key; the first is routed first); resolves to how many. */
  pushMany(tasks: Iterable<TaskLike>, chunk?: number): Promise<number>;
  close(): void;
}

export class SlotdError extends Error {}
/** Redis refused: nothing changed; the tasks are still held. */
export class Refused extends SlotdError {
  taken: Task[];
}
/** A reply was lost: the next call puts right what Redis did meanwhile. */
export class Lost extends SlotdError {}
export class ConfigError extends Error {}

export interface LinkOptions {
  namespace?: string;
  workerId: string;
  heartbeatTtlMs?: number;
  weight?: number;
  prefetch?: number;
}

/** The worker side of the protocol over one connection (libslotd's calls). */
export class Link {
  constructor(client: Redis, options: LinkOptions);
  readonly held: number;
  holds(task: Task): boolean;
  register(): Promise<number>;
  heartbeat(): Promise<void>;
  take(n: number, block?: boolean, blockS?: number): Promise<Task[]>;
  ackAndTake(done: Task[], n: number, block?: boolean, blockS?: number): Promise<Task[]>;
  ack(done: Task[]): Promise<void>;
  deadLetter(task: Task, entry: Buffer): Promise<void>;
  leave(): Promise<void>;
  close(): void;
}

export function loadConfig(file: string): Config;
export function makeConfig(options?: ConnectOptions & { logLevel?: Settings["logLevel"] }): Settings;
export function makeLogger(level?: Settings["logLevel"], write?: (line: string) => void): Logger;
export function keyslot(key: Buffer | string): number;
/** The shard of a slot: slot * shards / 16384, rounded down. */
export function shardOfSlot(slot: number, shards: number): number;
/** The shard of a task's bytes under config's routing rules (docs/shards.md). */
export function taskShard(data: Buffer, config: Settings): number;
export function crc16(bytes: Uint8Array, start?: number, end?: number): number;
export function fingerprint(data: Uint8Array): string;
export function encodeTask(task: TaskLike, key?: string | number | null, keyField?: string): Buffer;
export function formatEntry(reason: string | Buffer, detail: string | Buffer | null, task: Buffer, atMs?: number): Buffer;
export function parseEntry(entry: Buffer | string): {
  reason: Buffer;
  detail: Buffer;
  at_ms: number;
  task: Buffer;
  [field: string]: unknown;
};
export function routingKey(data: Buffer, keyField: string): [Buffer | null, unknown];
export const scripts: {
  ALLOW_OOM: string; CHECK_TYPES: string; TAKE: string; ACK: string; DEAD: string; RECOVER: string; BEAT: string; LEAVE: string;
  BY_C_NAME: Record<string, string>;
};
export const version: string;
