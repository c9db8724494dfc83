"use strict";
/*
 * slotd: worker and producer library for the slotd dispatcher.
 *
 *   const slotd = require("slotd");
 *   const worker = new slotd.Worker({ config: "/etc/slotd/slotd.yaml", id: "w1", concurrency: 8 });
 *   worker.handler(async (task) => {
 *     const order = task.json;       // the task parsed; task.data has its bytes
 *     ...                            // throw to retry; after maxAttempts, dead letter
 *   });
 *   await worker.run();              // until SIGTERM: finishes, gives back, leaves
 *
 *   await new slotd.Producer({ config: "/etc/slotd/slotd.yaml" }).push({ key: "user:42", op: "charge" });
 *
 * Tasks of one routing key run one at a time, in the order they were
 * pushed, on one worker at a time, through joins, leaves and deaths
 * (docs/workers.md).
 */
const { ConfigError, loadConfig, makeConfig } = require("./config");
const { formatEntry, parseEntry } = require("./deadletter");
const { crc16, keyslot, shardOfSlot } = require("./keyslot");
const { Link, Lost, Refused, SlotdError, Task, fingerprint } = require("./link");
const { Producer, encodeTask, taskShard } = require("./producer");
const { Worker, routingKey } = require("./worker");
const { makeLogger } = require("./log");
const scripts = require("./scripts");

module.exports = {
  ConfigError, Link, Lost, Producer, Refused, SlotdError, Task, Worker, crc16, encodeTask, fingerprint,
  formatEntry, keyslot, loadConfig, makeConfig, makeLogger, parseEntry, routingKey, scripts, shardOfSlot, taskShard,
  version: require("../package.json").version,
};
