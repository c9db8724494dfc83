"""The YAML configuration shared with slotd (docs/configuration.md).

A worker or producer given slotd's own file reads what it needs from it:
``redis.*``, ``namespace``, ``routing.*``, ``workers.heartbeat_ttl_ms`` and
the ``worker`` section. Every key slotd knows is accepted; an unknown key,
a quoted number, a value out of range or of the wrong kind is an error
naming ``FILE:LINE:COLUMN`` as slotd does. Other keys (``http``, ``leader``,
...) are checked for their type and range only: ``slotd -t`` checks the rest.
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Dict, List, Optional, Tuple

# name: (kind, default, low, high) for integers; (kind, default, choices) for
# enumerations; (kind, default) for strings. The same table as src/conf.c.
KEYS: Dict[str, Tuple[Any, ...]] = {
    "redis.host": ("str", "127.0.0.1"),
    "redis.port": ("int", 6379, 1, 65535),
    "redis.unix": ("str", ""),
    "redis.db": ("int", 0, 0, 100000),
    "redis.username": ("str", ""),
    "redis.password_file": ("str", ""),
    "redis.reconnect_min_ms": ("int", 100, 1, 60000),
    "redis.reconnect_max_ms": ("int", 5000, 1, 600000),
    "redis.connect_timeout_ms": ("int", 1000, 10, 600000),
    "redis.reply_timeout_ms": ("int", 3000, 100, 600000),
    "redis.sentinels": ("str", ""),
    "redis.sentinel_master": ("str", ""),
    "redis.sentinel_username": ("str", ""),
    "redis.sentinel_password_file": ("str", ""),
    "redis.cluster_seeds": ("str", ""),
    "namespace": ("str", "slotd"),
    "shards": ("int", 1, 1, 256),
    "routing.key_field": ("str", "key"),
    "routing.on_missing_key": ("enum", "dead_letter", ("dead_letter", "payload")),
    "dispatch.batch": ("int", 2000, 1, 100000),
    "dispatch.inflight": ("int", 1, 1, 2),
    "dispatch.max_task_bytes": ("int", 1048576, 1, 536870912),
    "workers.check_interval_ms": ("int", 200, 10, 60000),
    "workers.heartbeat_ttl_ms": ("int", 3000, 100, 600000),
    "workers.max_recoveries": ("int", 3, 1, 1000),
    "log.level": ("enum", "info", ("error", "warn", "info", "debug")),
    "http.listen": ("str", "127.0.0.1:9464"),
    "http.max_connections": ("int", 64, 1, 10000),
    "http.timeout_ms": ("int", 5000, 100, 600000),
    "http.request_deadline_ms": ("int", 10000, 100, 600000),
    "http.max_header_bytes": ("int", 8192, 1024, 1048576),
    "leader.lease_ms": ("int", 2000, 100, 600000),
    "leader.renew_ms": ("int", 500, 20, 60000),
    "leader.node": ("str", ""),
    "worker.prefetch": ("int", 16, 1, 10000),
    "worker.max_attempts": ("int", 3, 1, 1000),
    "worker.weight": ("int", 1, 1, 1000),
    "worker.retry_min_ms": ("int", 100, 1, 600000),
    "worker.retry_max_ms": ("int", 10000, 1, 3600000),
}

_NULLS = ("", "~", "null", "Null", "NULL")
_INT = re.compile(r"^-?[0-9]+$")
_NAMESPACE = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_WORKER_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class ConfigError(ValueError):
    """A configuration file or option that cannot be used; the message is
    ``FILE:LINE:COLUMN: what is wrong`` for a file."""


@dataclasses.dataclass
class Config:
    """What a worker or producer uses of the configuration; every field at
    slotd's default unless set. ``values`` holds every key of the file by
    its dotted name."""

    host: str = "127.0.0.1"
    port: int = 6379
    unix: str = ""
    db: int = 0
    username: str = ""
    password: Optional[str] = None
    reconnect_min_ms: int = 100
    reconnect_max_ms: int = 5000
    connect_timeout_ms: int = 1000
    reply_timeout_ms: int = 3000
    #: Redis Sentinel: (host, port) of each sentinel; empty to connect directly.
    sentinels: List[Tuple[str, int]] = dataclasses.field(default_factory=list)
    sentinel_master: str = ""
    sentinel_username: str = ""
    sentinel_password: Optional[str] = None
    #: Redis Cluster: (host, port) of each seed node; each namespace (shard)
    #: is served by the master of its hash tag's slot, as the seeds name it.
    cluster_seeds: List[Tuple[str, int]] = dataclasses.field(default_factory=list)
    namespace: str = "slotd"
    key_field: str = "key"
    on_missing_key: str = "dead_letter"
    #: The namespace in this many shards (a producer pushes each task to its
    #: shard's intake, docs/shards.md); 1: not split.
    shards: int = 1
    max_task_bytes: int = 1048576
    heartbeat_ttl_ms: int = 3000
    prefetch: int = 16
    max_attempts: int = 3
    weight: int = 1
    retry_min_ms: int = 100
    retry_max_ms: int = 10000
    values: Dict[str, Any] = dataclasses.field(default_factory=dict)

    def check(self) -> "Config":
        """Checks the rules between fields (raises ConfigError); returns self."""
        if not _NAMESPACE.match(self.namespace):
            raise ConfigError("namespace %r: 1-64 of [A-Za-z0-9._:-]" % self.namespace)
        for name, lo, hi in (("port", 1, 65535), ("db", 0, 100000), ("heartbeat_ttl_ms", 100, 600000),
                             ("prefetch", 1, 10000), ("max_attempts", 1, 1000), ("weight", 1, 1000),
                             ("retry_min_ms", 1, 600000), ("retry_max_ms", 1, 3600000),
                             ("reconnect_min_ms", 1, 60000), ("reconnect_max_ms", 1, 600000),
                             ("connect_timeout_ms", 10, 600000), ("reply_timeout_ms", 100, 600000),
                             ("shards", 1, 256), ("max_task_bytes", 1, 536870912)):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                raise ConfigError("%s: %r is out of range %d..%d" % (name, v, lo, hi))
        if self.retry_max_ms < self.retry_min_ms:
            raise ConfigError("retry_max_ms (%d) must be at least retry_min_ms (%d)"
                              % (self.retry_max_ms, self.retry_min_ms))
        if self.reconnect_max_ms < self.reconnect_min_ms:
            raise ConfigError("reconnect_max_ms (%d) must be at least reconnect_min_ms (%d)"
                              % (self.reconnect_max_ms, self.reconnect_min_ms))
        if self.sentinels and not self.sentinel_master:
            raise ConfigError("sentinels need sentinel_master: the name the sentinels know the master by")
        if self.cluster_seeds:
            if self.sentinels:
                raise ConfigError("cluster_seeds and sentinels exclude each other")
            if self.unix:
                raise ConfigError("cluster_seeds and unix exclude each other")
            if self.db != 0:
                raise ConfigError("cluster_seeds needs db 0: a Cluster has only database 0")
        if self.on_missing_key not in ("dead_letter", "payload"):
            raise ConfigError("on_missing_key must be one of dead_letter, payload")
        return self


def valid_worker_id(wid: str) -> bool:
    """Whether wid is a valid worker id: 1 to 64 of ``[A-Za-z0-9._-]``."""
    return bool(_WORKER_ID.match(wid))


def parse_sentinels(text: str, what: str = "redis.sentinels") -> List[Tuple[str, int]]:
    """``"host:port,[::1]:26379,..."`` as a list of (host, port); at most 16.
    (Also ``redis.cluster_seeds``, with what naming it.)"""
    out: List[Tuple[str, int]] = []
    for item in (p.strip() for p in text.split(",")):
        if not item:
            continue
        m = re.match(r"^\[([^\]]+)\]:(\d+)$", item) or re.match(r"^([^:\[\]]+):(\d+)$", item)
        if not m or not 1 <= int(m.group(2)) <= 65535:
            raise ConfigError("%s: '%s' is not host:port" % (what, item))
        out.append((m.group(1), int(m.group(2))))
    if len(out) > 16:
        raise ConfigError("%s: at most 16 addresses" % what)
    return out


def _read_secret(path: str, base: str) -> str:
    full = path if os.path.isabs(path) else os.path.join(base, path)
    with open(full, "rb") as f:
        data = f.read(65537)
    if data.endswith(b"\r\n"):
        data = data[:-2]
    elif data.endswith(b"\n"):
        data = data[:-1]
    if not data or b"\0" in data or len(data) > 65536:
        raise ValueError("an empty password, a NUL byte or more than 64 KiB")
    return data.decode("utf-8", "surrogateescape")


def load_config(path: str) -> Config:
    """Reads slotd's YAML file at path (python3-yaml). Raises ConfigError."""
    import yaml  # Debian's python3-yaml; only needed to read a file

    try:
        with open(path, "rb") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError("%s: %s" % (path, e.strerror)) from None

    def at(node: Any) -> str:
        return "%s:%d:%d" % (path, node.start_mark.line + 1, node.start_mark.column + 1)

    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark
        where = "%s:%d:%d" % (path, mark.line + 1, mark.column + 1) if mark else path
        raise ConfigError("%s: YAML syntax error: %s" % (where, e.problem)) from None
    except yaml.YAMLError as e:
        raise ConfigError("%s: YAML syntax error: %s" % (path, e)) from None

    values: Dict[str, Any] = {name: spec[1] for name, spec in KEYS.items()}
    marks: Dict[str, Any] = {}

    def scalar(name: str, node: Any) -> Any:
        spec = KEYS[name]
        if not isinstance(node, yaml.ScalarNode):
            kind = "a sequence" if isinstance(node, yaml.SequenceNode) else "a mapping"
            raise ConfigError("%s: %s must be a scalar, not %s" % (at(node), name, kind))
        plain = node.style is None or node.style == ""
        v = node.value
        if spec[0] == "int":
            if not plain or not _INT.match(v):
                if not plain and _INT.match(v):
                    raise ConfigError("%s: %s: '%s' must be an integer, not a quoted string" % (at(node), name, v))
                raise ConfigError("%s: %s: '%s' is not an integer" % (at(node), name, v))
            n = int(v)
            if not spec[2] <= n <= spec[3]:
                raise ConfigError("%s: %s: %d is out of range %d..%d" % (at(node), name, n, spec[2], spec[3]))
            return n
        if plain and v in _NULLS:
            v = ""
        if spec[0] == "enum" and v not in spec[2]:
            raise ConfigError("%s: %s: '%s' must be one of %s" % (at(node), name, v, ", ".join(spec[2])))
        return v

    def mapping(node: Any, prefix: str) -> None:
        seen: Dict[str, Any] = {}
        for knode, vnode in node.value:
            if not isinstance(knode, yaml.ScalarNode):
                raise ConfigError("%s: a key must be a scalar" % at(knode))
            name = prefix + knode.value
            if name in seen:
                first = seen[name]
                raise ConfigError("%s: duplicate key '%s' (first at %d:%d)" % (
                    at(knode), name, first.start_mark.line + 1, first.start_mark.column + 1))
            seen[name] = knode
            if name in KEYS:
                values[name] = scalar(name, vnode)
                marks[name] = vnode
            elif not prefix and any(k.startswith(name + ".") for k in KEYS):
                if isinstance(vnode, yaml.ScalarNode) and vnode.value in _NULLS and not vnode.style:
                    continue            # an empty section
                if not isinstance(vnode, yaml.MappingNode):
                    raise ConfigError("%s: %s must be a mapping, not a %s" % (
                        at(vnode), name, "sequence" if isinstance(vnode, yaml.SequenceNode) else "scalar"))
                mapping(vnode, name + ".")
            else:
                raise ConfigError("%s: unknown key '%s'" % (at(knode), name))

    if root is not None:
        if isinstance(root, yaml.ScalarNode) and root.value in _NULLS:
            pass
        elif not isinstance(root, yaml.MappingNode):
            raise ConfigError("%s: the file must be a mapping of sections" % at(root))
        else:
            mapping(root, "")

    def fail(name: str, why: str) -> ConfigError:
        node = marks.get(name)
        return ConfigError("%s: %s" % (at(node) if node is not None else path, why))

    if not _NAMESPACE.match(values["namespace"]):
        raise fail("namespace", "namespace: '%s' must be 1-64 of [A-Za-z0-9._:-]" % values["namespace"])
    for lo, hi in (("redis.reconnect_min_ms", "redis.reconnect_max_ms"), ("worker.retry_min_ms", "worker.retry_max_ms")):
        if values[hi] < values[lo]:
            raise fail(hi if hi in marks else lo, "%s (%d) must be at least %s (%d)" % (hi, values[hi], lo, values[lo]))
    base = os.path.dirname(os.path.abspath(path))
    secrets: Dict[str, Optional[str]] = {}
    for name in ("redis.password_file", "redis.sentinel_password_file"):
        secrets[name] = None
        if values[name]:
            try:
                secrets[name] = _read_secret(values[name], base)
            except (OSError, ValueError) as e:
                why = e.strerror if isinstance(e, OSError) else str(e)
                raise fail(name, "%s: cannot read '%s': %s" % (name, values[name], why)) from None
    try:
        sentinels = parse_sentinels(values["redis.sentinels"])
    except ConfigError as e:
        raise fail("redis.sentinels", str(e)) from None
    if sentinels and not values["redis.sentinel_master"]:
        raise fail("redis.sentinels", "redis.sentinels needs redis.sentinel_master: the name the sentinels know the master by")
    try:
        seeds = parse_sentinels(values["redis.cluster_seeds"], "redis.cluster_seeds")
    except ConfigError as e:
        raise fail("redis.cluster_seeds", str(e)) from None
    if seeds:
        for other, why in (("redis.sentinels", "redis.cluster_seeds and redis.sentinels exclude each other"),
                           ("redis.unix", "redis.cluster_seeds and redis.unix exclude each other"),
                           ("redis.db", "redis.cluster_seeds needs redis.db 0: a Cluster has only database 0")):
            if values[other]:
                raise fail("redis.cluster_seeds", why)

    return Config(
        host=values["redis.host"], port=values["redis.port"], unix=values["redis.unix"], db=values["redis.db"],
        username=values["redis.username"], password=secrets["redis.password_file"],
        reconnect_min_ms=values["redis.reconnect_min_ms"], reconnect_max_ms=values["redis.reconnect_max_ms"],
        connect_timeout_ms=values["redis.connect_timeout_ms"], reply_timeout_ms=values["redis.reply_timeout_ms"],
        sentinels=sentinels, sentinel_master=values["redis.sentinel_master"],
        sentinel_username=values["redis.sentinel_username"], sentinel_password=secrets["redis.sentinel_password_file"],
        cluster_seeds=seeds, namespace=values["namespace"], key_field=values["routing.key_field"],
        on_missing_key=values["routing.on_missing_key"], shards=values["shards"],
        max_task_bytes=values["dispatch.max_task_bytes"], heartbeat_ttl_ms=values["workers.heartbeat_ttl_ms"],
        prefetch=values["worker.prefetch"], max_attempts=values["worker.max_attempts"], weight=values["worker.weight"],
        retry_min_ms=values["worker.retry_min_ms"], retry_max_ms=values["worker.retry_max_ms"], values=values,
    )


def make_config(path: Optional[str] = None, base: Optional[Config] = None, **options: Any) -> Config:
    """A Config from a file (or base, or the defaults) with options
    (the Config field names) put over it, checked."""
    cfg = base if base is not None else (load_config(path) if path else Config())
    fields = {f.name for f in dataclasses.fields(Config)}
    changes: Dict[str, Any] = {}
    for name, value in options.items():
        if value is None:
            continue
        if name not in fields:
            raise TypeError("unknown option %r" % name)
        if name in ("sentinels", "cluster_seeds") and isinstance(value, str):
            value = parse_sentinels(value, "redis." + name)
        changes[name] = value
    return dataclasses.replace(cfg, **changes).check()
