"""Producer: pushes tasks onto slotd's intake (docs/protocol.md, *Producers*).

    p = Producer(config="/etc/slotd/slotd.yaml")
    p.push({"key": "user:42", "op": "charge", "amount": 100})
    p.push_many([{"key": "user:42", "op": "refund"}, b'{"key":"user:7"}'])
"""
from __future__ import annotations

import json
from typing import Any, Iterable, List, Mapping, Optional, Union

from . import _redis
from .config import Config, make_config

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


class Producer:
    """Pushes tasks onto ``{namespace}:intake``. Options as for Worker: a
    configuration file, a Config, keyword options (``host``, ``port``,
    ``namespace``, ``key_field``, ...), or your own ``client`` (a
    ``redis.Redis``) or ``client_factory``."""

    def __init__(self, *, config: Any = None, client: Any = None,
                 client_factory: Optional[_redis.ClientFactory] = None, **options: Any) -> None:
        if isinstance(config, Config):
            self.config = make_config(base=config, **options)
        else:
            self.config = make_config(config, **options)
        factory = client_factory or _redis.client_factory(self.config, "slotd-producer")
        #: The redis.Redis client pushes go through.
        self.client = client if client is not None else factory("producer")
        #: The intake's key.
        self.intake = "{%s}:intake" % self.config.namespace

    def push(self, task: TaskLike, key: Any = None) -> int:
        """Pushes one task (see encode_task); returns the intake's length."""
        return int(self.client.lpush(self.intake, encode_task(task, key, self.config.key_field)))

    def push_many(self, tasks: Iterable[TaskLike], chunk: int = 1000) -> int:
        """Pushes tasks in order (the first is routed first), up to chunk per
        LPUSH, pipelined; returns how many were pushed."""
        n = 0
        batch: List[bytes] = []
        with self.client.pipeline(transaction=False) as p:
            for t in tasks:
                batch.append(encode_task(t, None, self.config.key_field))
                if len(batch) >= chunk:
                    p.lpush(self.intake, *batch)
                    n += len(batch)
                    batch = []
            if batch:
                p.lpush(self.intake, *batch)
                n += len(batch)
            p.execute()
        return n

    def close(self) -> None:
        """Closes the client's connections."""
        self.client.close()
