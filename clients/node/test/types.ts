// Compiled by the test "the types compile": the README's examples, typed.
import { Worker, Producer, Task, keyslot, Refused, loadConfig } from "slotd";

const worker = new Worker({ config: "/etc/slotd/slotd.yaml", id: "w1", concurrency: 8 });
worker.handler(async (task: Task) => {
  const order = task.json as { key: string; amount: number };
  if (order.amount < 0) throw new Error("negative amount");
  const slot: number = task.slot;
  const attempt: number = task.attempt;
  return [slot, attempt, task.key?.toString("utf8")];
});
worker.on("deadLettered", (task, detail) => console.log(task.data.length, detail.length));
void worker.run().then(() => console.log(worker.acked, worker.deadLettered));

const w2 = new Worker(async (t) => { void t.text; }, { id: "w2", host: "127.0.0.1", port: 6380, prefetch: 64, sentinels: "a:1", sentinelMaster: "m" });
const w3 = new Worker(async () => {}, { id: "w3", shards: 4, clientFactory: (role: string) => { void role.split("#"); return p.client; } });
w2.stop();
w3.stop();

const p = new Producer({ namespace: "slotd" });
void p.push({ key: "user:42", op: "charge" }).then((n: number) => n + 1);
void p.push({ op: "refund" }, "user:42");
void p.pushMany([Buffer.from('{"key":"a"}'), '{"key":"b"}', { key: "c" }]);
const shard: number = p.shardOf({ key: "user:42" }) + p.intakes.length + new Producer({ shards: 4 }).shardOf("x") +
  new Producer({ clusterSeeds: "10.0.0.1:7000,10.0.0.2:7000", shards: 2 }).clients.length +
  new Producer({ clusterSeeds: [{ host: "10.0.0.1", port: 7000 }] }).config.clusterSeeds.length;
void shard;
p.close();

const s: number = keyslot("user:42");
const e = new Refused("x");
const n: number = e.taken.length + s + loadConfig("/etc/slotd/slotd.yaml").prefetch;
export { n };
