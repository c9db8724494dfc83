"""Redis connections from a Config: a server by host and port or unix socket,
or the master that Redis Sentinel names.

Everything that opens a connection goes through a *client factory*: a
function of a connection's role (``"worker"``, ``"heartbeat"``,
``"producer"``; a worker serving a namespace in shards asks for
``"worker#<i>"`` and ``"heartbeat#<i>"`` for shard i) that returns a
``redis.Redis``. Pass your own to Worker or
Producer to connect differently. This is where shards of a Redis Cluster
will plug in: every key of one namespace carries the hash tag ``{ns}``, so a
cluster client sends all of them to the one node that owns that slot.
"""
from __future__ import annotations

from typing import Any, Callable, Dict

import redis
from redis.sentinel import Sentinel

from .config import Config

#: A function of a role name that returns a connected-on-demand client.
ClientFactory = Callable[[str], "redis.Redis"]

#: The longest a worker blocks in Redis waiting for a first task, in seconds.
BLOCK_S = 1.0


def client_factory(cfg: Config, name: str) -> ClientFactory:
    """The default factory: each role's client is named ``<name>`` plus
    ``:<role>`` in CLIENT LIST (a shard's as libslotd names them:
    ``<name>#<i>`` and ``<name>#<i>:heartbeat``), and times out a reply
    after ``reply_timeout_ms`` (plus the longest blocking wait)."""

    def make(role: str) -> "redis.Redis":
        base, _, shard = role.partition("#")
        named = name + "#" + shard if shard else name
        kw: Dict[str, Any] = dict(
            db=cfg.db,
            username=cfg.username or None,
            password=cfg.password,
            socket_timeout=cfg.reply_timeout_ms / 1000.0 + BLOCK_S,
            socket_connect_timeout=cfg.connect_timeout_ms / 1000.0,
            client_name=named if base == "worker" else "%s:%s" % (named, base),
        )
        if cfg.sentinels:
            skw: Dict[str, Any] = dict(socket_timeout=cfg.reply_timeout_ms / 1000.0,
                                       socket_connect_timeout=cfg.connect_timeout_ms / 1000.0)
            if cfg.sentinel_password is not None:
                skw["password"] = cfg.sentinel_password
                if cfg.sentinel_username:
                    skw["username"] = cfg.sentinel_username
            return Sentinel(cfg.sentinels, sentinel_kwargs=skw).master_for(cfg.sentinel_master, **kw)
        if cfg.unix:
            return redis.Redis(unix_socket_path=cfg.unix, **kw)
        return redis.Redis(host=cfg.host, port=cfg.port, **kw)

    return make


def describe(cfg: Config) -> str:
    """Where cfg points, for log lines."""
    if cfg.sentinels:
        return "master %s via %s" % (cfg.sentinel_master, ",".join("%s:%d" % s for s in cfg.sentinels))
    if cfg.unix:
        return "unix:" + cfg.unix
    return "%s:%d" % (cfg.host, cfg.port)
