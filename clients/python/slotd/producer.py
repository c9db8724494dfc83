"""Producer: pushes tasks onto slotd's intake (docs/protocol.md, *Producers*);
with ``shards`` above 1, onto the intake of each task's shard (docs/shards.md).

    p = Producer(config="/etc/slotd/slotd.yaml")
    p.push({"key": "user:42", "op": "charge", "amount": 100})
    p.push_many([{"key": "user:42", "op": "refund"}, b'{"key":"user:7"}'])
"""
from __future__ import annotations

import json
from typing import Any, Dict, Iterable, List, Mapping, Optional, Union

from . import _redis
from .config import Config, make_config
from .keyslot import keyslot, shard_of_slot
from .worker import _NOT_PARSED, routing_key

#: A task: bytes as they are, a str as UTF-8, anything else as JSON.
TaskLike = Union[bytes, str, Mapping[str, Any]]


def encode_task(task: Any, key: Any = None, key_field: str = "key") -> bytes:
    """The bytes of a task. A mapping (or any other JSON value) becomes
    compact JSON; with key, the mapping's key_field is set to it first."""
    if isinstance(task, (bytes, bytearray, memoryview)):
        if key is not None:
            raise ValueError("key= needs a mapping, not bytes")
        return bytes(task)
    if isinstance(task, str):
        if key is not None:
            raise ValueError("key= needs a mapping, not a string")
        return task.encode("utf-8")
    if key is not None:
        if not isinstance(task, Mapping):
            raise ValueError("key= needs a mapping")
        if not key_field:
            raise ValueError("key= needs routing.key_field (it is empty: the whole task is the key)")
        task = dict(task)
        task[key_field] = key
    return json.dumps(task, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def task_shard(data: bytes, config: Config) -> int:
    """The shard of the task's bytes, by slotd's rule (docs/shards.md): the
    shard of its routing key's slot; 0 for a task slotd cannot route (empty,
    larger than max_task_bytes, not JSON, or without a usable key under
    on_missing_key dead_letter), which shard 0's slotd dead-letters."""
    if config.shards <= 1 or not data or len(data) > config.max_task_bytes:
        return 0
    if not config.key_field:
        return shard_of_slot(keyslot(data), config.shards)
    key, parsed = routing_key(data, config.key_field)
    if key is None:
        if parsed is _NOT_PARSED or config.on_missing_key != "payload":
            return 0
        key = data
    return shard_of_slot(keyslot(key), config.shards)


class Producer:
    """Pushes tasks onto ``{namespace}:intake``, or with ``shards`` N above 1
    onto ``{namespace#i}:intake`` of each task's shard i. Options as for Worker: a
    configuration file, a Config, keyword options (``host``, ``port``,
    ``namespace``, ``key_field``, ...), or your own ``client`` (a
    ``redis.Redis``) or ``client_factory``. With ``cluster_seeds`` and
    shards, each shard's tasks go through its own client (the factory's
    ``producer#<i>``), to the master of that shard's slot."""

    def __init__(self, *, config: Any = None, client: Any = None,
                 client_factory: Optional[_redis.ClientFactory] = None, **options: Any) -> None:
        if isinstance(config, Config):
            self.config = make_config(base=config, **options)
        else:
            self.config = make_config(config, **options)
        factory = client_factory or _redis.client_factory(self.config, "slotd-producer")
        ns, shards = self.config.namespace, self.config.shards
        if client is None and self.config.cluster_seeds and shards > 1:
            #: Each shard's client: one client for all unless on a Redis Cluster.
            self.clients = [factory("producer#%d" % i) for i in range(shards)]
        else:
            self.clients = [client if client is not None else factory("producer")] * max(shards, 1)
        #: The redis.Redis client pushes go through (shard 0's when split).
        self.client = self.clients[0]
        #: Each shard's intake: ``[{ns}:intake]`` when not split.
        self.intakes = ["{%s}:intake" % ns] if shards <= 1 else \
            ["{%s#%d}:intake" % (ns, i) for i in range(shards)]
        #: The intake's key (shard 0's when split).
        self.intake = self.intakes[0]

    def shard_of(self, task: TaskLike, key: Any = None) -> int:
        """The shard the task goes to (see task_shard); 0 when not split."""
        return task_shard(encode_task(task, key, self.config.key_field), self.config)

    def push(self, task: TaskLike, key: Any = None) -> int:
        """Pushes one task (see encode_task) onto its shard's intake; returns
        that intake's length."""
        data = encode_task(task, key, self.config.key_field)
        s = task_shard(data, self.config)
        return int(self.clients[s].lpush(self.intakes[s], data))

    def push_many(self, tasks: Iterable[TaskLike], chunk: int = 1000) -> int:
        """Pushes tasks in order (the first is routed first): each shard's in
        the order given, so every key's, up to chunk per LPUSH, pipelined;
        returns how many were pushed."""
        n = 0
        batches: List[List[bytes]] = [[] for _ in self.intakes]
        # One pipeline per distinct client (one in all, unless on a Cluster).
        pipes: Dict[int, Any] = {}
        for c in self.clients:
            if id(c) not in pipes:
                pipes[id(c)] = c.pipeline(transaction=False)
        try:
            for t in tasks:
                data = encode_task(t, None, self.config.key_field)
                s = task_shard(data, self.config)
                batches[s].append(data)
                if len(batches[s]) >= chunk:
                    pipes[id(self.clients[s])].lpush(self.intakes[s], *batches[s])
                    n += len(batches[s])
                    batches[s] = []
            for s, batch in enumerate(batches):
                if batch:
                    pipes[id(self.clients[s])].lpush(self.intakes[s], *batch)
                    n += len(batch)
            for p in pipes.values():
                p.execute()
        finally:
            for p in pipes.values():
                p.reset()
        return n

    def close(self) -> None:
        """Closes the clients' connections."""
        for i, c in enumerate(self.clients):
            if all(c is not d for d in self.clients[:i]):
                c.close()
