"""Redis connections from a Config: a server by host and port or unix socket,
the master that Redis Sentinel names, or with Redis Cluster the master of
the slot of the role's namespace (or shard), as the seeds name it.

Everything that opens a connection goes through a *client factory*: a
function of a connection's role (``"worker"``, ``"heartbeat"``,
``"producer"``; a worker serving a namespace in shards asks for
``"worker#<i>"`` and ``"heartbeat#<i>"`` for shard i) that returns a
``redis.Redis``. Pass your own to Worker or
Producer to connect differently (a producer asks for ``"producer#<i>"``
per shard when the configuration has ``cluster_seeds``).

Redis Cluster: every key of a namespace carries the hash tag ``{ns}``
(``{ns#i}`` for shard i), so all of a role's keys live in one slot, on one
master. A cluster client is a plain ``redis.Redis`` whose connections, each
time they connect, ask the seeds in turn for CLUSTER SLOTS and go to the
master of that slot (as slotd's src/dial.c does). A reply MOVED, ASK,
TRYAGAIN or CLUSTERDOWN (the slot moved or the cluster is down; the command
was not applied) drops the connection and fails the call as a lost
connection does: the next call connects again, through the seeds.
"""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Tuple

import redis
from redis.exceptions import ConnectionError as _ConnectionError
from redis.exceptions import ResponseError
from redis.sentinel import Sentinel

from .config import Config
from .keyslot import keyslot

#: A function of a role name that returns a connected-on-demand client.
ClientFactory = Callable[[str], "redis.Redis"]

#: The longest a worker blocks in Redis waiting for a first task, in seconds.
BLOCK_S = 1.0


#: The error replies of a Redis Cluster node that does not serve the slot
#: now: the command was not applied.
CLUSTER_ERRORS = ("MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN")


def _fmt(host: str, port: int) -> str:
    return ("[%s]:%d" if ":" in host else "%s:%d") % (host, port)


def cluster_master(seeds: List[Tuple[str, int]], slot: int, username: Optional[str] = None,
                   password: Optional[str] = None, timeout: float = 1.0) -> Tuple[str, int]:
    """The (host, port) of the master of slot, by CLUSTER SLOTS asked of each
    seed in turn; raises redis.ConnectionError naming what each seed said."""
    why: List[str] = []
    for host, port in seeds:
        at = _fmt(host, port)
        c = redis.Connection(host=host, port=port, username=username, password=password,
                             socket_timeout=timeout, socket_connect_timeout=timeout)
        try:
            c.send_command("CLUSTER", "SLOTS")
            got = c.read_response()
        except ResponseError as e:
            why.append("seed %s refused CLUSTER SLOTS: %s" % (at, e))
            continue
        except (_ConnectionError, redis.TimeoutError, OSError) as e:
            why.append("seed %s: %s" % (at, e))
            continue
        finally:
            c.disconnect()
        for entry in got or []:
            if int(entry[0]) <= slot <= int(entry[1]) and len(entry) > 2:
                m = entry[2]
                h = m[0].decode() if isinstance(m[0], bytes) else str(m[0])
                # An empty or "?" host: the node that answered (Redis 7).
                return (h if h and h != "?" else host), int(m[1])
        why.append("seed %s: nobody serves slot %d" % (at, slot))
    raise _ConnectionError("Redis Cluster: no master for slot %d: %s" % (slot, "; ".join(why)))


class ClusterSlotConnection(redis.Connection):
    """A connection to the master of one slot of a Redis Cluster, looked up
    from the seeds at each connect; a cluster error reply (CLUSTER_ERRORS)
    drops it and raises redis.ConnectionError."""

    def __init__(self, *, cluster_seeds: List[Tuple[str, int]], slot: int, **kw: Any) -> None:
        self.cluster_seeds = list(cluster_seeds)
        self.slot = slot
        super().__init__(**kw)

    def connect(self) -> None:
        if self._sock:
            return
        self.host, self.port = cluster_master(self.cluster_seeds, self.slot, self.username, self.password,
                                              self.socket_connect_timeout or 1.0)
        super().connect()

    def read_response(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().read_response(*args, **kwargs)
        except ResponseError as e:
            text = str(e)
            if text.startswith(CLUSTER_ERRORS):
                self.disconnect()
                raise _ConnectionError("Redis Cluster: %s (slot %d at %s): reconnecting through the seeds"
                                       % (text, self.slot, _fmt(self.host, self.port))) from None
            raise


def role_tag(cfg: Config, role: str) -> str:
    """The hash tag of a role's keys: ``{ns}``, or ``{ns#i}`` for a role of
    shard i (``worker#<i>``...)."""
    _, _, shard = role.partition("#")
    return "{%s#%s}" % (cfg.namespace, shard) if shard else "{%s}" % cfg.namespace


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
        if cfg.cluster_seeds:
            pool = redis.ConnectionPool(connection_class=ClusterSlotConnection, cluster_seeds=cfg.cluster_seeds,
                                        slot=keyslot(role_tag(cfg, role)), **kw)
            return redis.Redis(connection_pool=pool)
        if cfg.unix:
            return redis.Redis(unix_socket_path=cfg.unix, **kw)
        return redis.Redis(host=cfg.host, port=cfg.port, **kw)

    return make


def describe(cfg: Config) -> str:
    """Where cfg points, for log lines."""
    if cfg.cluster_seeds:
        return "Redis Cluster via %s" % ",".join(_fmt(*s) for s in cfg.cluster_seeds)
    if cfg.sentinels:
        return "master %s via %s" % (cfg.sentinel_master, ",".join("%s:%d" % s for s in cfg.sentinels))
    if cfg.unix:
        return "unix:" + cfg.unix
    return "%s:%d" % (cfg.host, cfg.port)
