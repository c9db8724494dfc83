"use strict";
/*
 * A test worker on the slotd package: logs "worker id key attempt" per task
 * it runs to a shared file (one O_APPEND write each, so the file's order is
 * the order the tasks ran in, across processes), then maybe waits or fails.
 *
 *   worker-main.js --config FILE --id ID --log FILE [--concurrency N] [--sleep-ms MS]
 *                  [--fail ID[:N],...] [--prefetch N] [--max-attempts N]
 */
const fs = require("fs");
const path = require("path");
const slotd = require(path.join(__dirname, ".."));

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, "")] = process.argv[i + 1];
const fd = fs.openSync(args.log, "a");
const fail = new Map((args.fail || "").split(",").filter(Boolean).map((x) => {
  const [id, times] = x.split(":");
  return [+id, times === undefined ? 1000 : +times];
}));
const sleepMs = +(args["sleep-ms"] || 0);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function handle(task) {
  const body = task.json;
  fs.writeSync(fd, `${task.workerId} ${body.id} ${body.key} ${task.attempt}\n`);
  if (sleepMs) await sleep(sleepMs);
  if (task.attempt <= (fail.get(body.id) || 0)) throw new Error(`task ${body.id} fails on attempt ${task.attempt}`);
}

const worker = new slotd.Worker(handle, {
  config: args.config, id: args.id, concurrency: +(args.concurrency || 1),
  prefetch: args.prefetch ? +args.prefetch : undefined, maxAttempts: args["max-attempts"] ? +args["max-attempts"] : undefined,
  retryMinMs: 20, retryMaxMs: 100,
});
worker.run().then(() => console.log("exited cleanly"), (e) => {
  console.log("failed:", e);
  process.exit(1);
});
