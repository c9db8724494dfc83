"""The pure parts: the scripts are libslotd's, key to slot, the config file,
dead-letter entries, routing keys."""
from __future__ import annotations

import base64
import json
import os
import re
import subprocess

import pytest

from conftest import ROOT, build_dir

import slotd
from slotd import _scripts
from slotd.config import ConfigError, load_config, make_config


def c_scripts() -> dict:
    """Each script of src/slotd_worker.c, its C string literals joined and
    its macros (ALLOW_OOM, CHECK_TYPES) expanded."""
    src = open(os.path.join(ROOT, "src", "slotd_worker.c")).read()

    def literal(text: str) -> str:
        parts = re.findall(r'"((?:[^"\\]|\\.)*)"', text)
        return "".join(bytes(p, "utf-8").decode("unicode_escape") for p in parts)

    macros = {}
    for name in ("ALLOW_OOM", "CHECK_TYPES"):
        m = re.search(r"#define %s ((?:.*\\\n)*.*)\n" % name, src)
        assert m, name
        macros[name] = literal(m.group(1))
    out = {}
    for m in re.finditer(r"static const char (\w+)\[\] =\n(.*?);\n", src, re.S):
        body = m.group(2)
        head = body.split('"', 1)[0]
        text = "".join(macros[w] for w in re.findall(r"ALLOW_OOM|CHECK_TYPES", head))
        out[m.group(1)] = text + literal(body[len(head):])
    return out


def test_scripts_are_libslotds_text_for_text():
    c = c_scripts()
    assert set(_scripts.BY_C_NAME) <= set(c)
    for name, text in _scripts.BY_C_NAME.items():
        assert text == c[name], "%s differs from src/slotd_worker.c" % name
    assert _scripts.TAKE.startswith("#!lua flags=allow-oom\n")
    assert not _scripts.ACK.startswith("#!lua")


def test_task_shard_known_answers():
    """docs/shards.md's table (N = 4), the edges of the ranges, the
    unroutable rule; as route_shard's unit test in C."""
    from slotd.keyslot import shard_of_slot
    from slotd.producer import task_shard
    c4 = make_config(shards=4)
    for key, slot, shard in (("foo", 12182, 2), ("bar", 5061, 1), ("user:42", 15880, 3),
                             ("user:7", 2780, 0), ("order:1001", 241, 0),
                             ("{user1000}.following", 3443, 0), ("x{}{y}", 14166, 3)):
        assert slotd.keyslot(key) == slot
        assert task_shard(json.dumps({"key": key}).encode(), c4) == shard
    for slot, n2, n3, n8 in ((0, 0, 0, 0), (2047, 0, 0, 0), (2048, 0, 0, 1), (5461, 0, 0, 2),
                             (5462, 0, 1, 2), (8191, 0, 1, 3), (8192, 1, 1, 4), (10922, 1, 1, 5),
                             (10923, 1, 2, 5), (14335, 1, 2, 6), (14336, 1, 2, 7), (16383, 1, 2, 7)):
        assert (shard_of_slot(slot, 2), shard_of_slot(slot, 3), shard_of_slot(slot, 8)) == (n2, n3, n8)
    assert task_shard(b'{"key":"k69207"}', make_config(shards=3)) == 2      # slot 10923
    for bad in (b"", b'{"key":', b"[1]", b'{"id":"user:42"}', b'{"key":null}', b"\xff"):
        assert task_shard(bad, c4) == 0
    assert task_shard(b'{"key":"user:42"}', make_config(shards=4, max_task_bytes=5)) == 0
    payload = make_config(shards=4, on_missing_key="payload")
    assert task_shard(b'{"id":"user:42"}', payload) == shard_of_slot(slotd.keyslot(b'{"id":"user:42"}'), 4)
    assert task_shard(b'{"key":', payload) == 0
    assert task_shard(b"user:42", make_config(shards=4, key_field="")) == 3
    assert task_shard(b'{"key":"user:42"}', make_config()) == 0
    assert task_shard(b'{"key":12}', c4) == shard_of_slot(slotd.keyslot("12"), 4)


def test_keyslot_known_answers():
    assert slotd.crc16(b"123456789") == 0x31C3
    # The examples of Redis's CLUSTER KEYSLOT documentation.
    assert slotd.keyslot("somekey") == 11058
    assert slotd.keyslot("foo{hash_tag}") == 2515
    assert slotd.keyslot("bar{hash_tag}") == 2515
    assert slotd.keyslot("foo{}{bar}") == slotd.keyslot(b"foo{}{bar}")
    assert slotd.keyslot("foo{{bar}}zap") == slotd.keyslot("{bar")
    assert slotd.keyslot("") == 0


def test_keyslot_agrees_with_slotctl(env):
    keys = ["user:42", "{user:42}.orders", "caf\u00e9", "a{b}c", "{}x", "x{y", "\u043a\u043b\u044e\u0447"]
    for key in keys:
        out = subprocess.run([os.path.join(build_dir(), "slotctl"), "-c", env.conf, "keyslot", "--", key],
                             capture_output=True, text=True)
        m = re.search(r"slot (\d+)", out.stdout)
        assert m, out.stdout + out.stderr
        assert slotd.keyslot(key) == int(m.group(1)), key


def test_routing_key_as_slotd_finds_it():
    rk = slotd.routing_key
    assert rk(b'{"key":"user:42","x":1}', "key")[0] == b"user:42"
    assert rk(b'{"k\\u0065y":"x"}', "key")[0] == b"x"
    assert rk(b'{"key":"caf\\u00e9"}', "key")[0] == "caf\u00e9".encode()
    assert rk(b'{"key":1e3}', "key")[0] == b"1e3"
    assert rk(b'{"key":42}', "key")[0] == b"42"
    assert rk(b'{"key":-0.50}', "key")[0] == b"-0.50"
    assert rk(b'{"id":1}', "key")[0] is None
    assert rk(b'[1,2]', "key")[0] is None
    assert rk(b'{"key":"a"}', "")[0] is None
    assert rk(b'{"user":"u1"}', "user")[0] == b"u1"


def test_conf_sample_is_all_defaults():
    cfg = load_config(os.path.join(ROOT, "conf", "slotd.yaml"))
    assert cfg == slotd.Config(values=cfg.values)
    assert cfg.prefetch == 16 and cfg.heartbeat_ttl_ms == 3000 and cfg.namespace == "slotd"


def conf(tmp_path, text: str) -> str:
    p = tmp_path / "slotd.yaml"
    p.write_text(text)
    return str(p)


def test_conf_errors_name_file_line_column(tmp_path):
    cases = [
        ("redis:\n  hots: x\n", ":2:3: unknown key 'redis.hots'"),
        ("redis:\n  port: \"6379\"\n", ":2:9: redis.port: '6379' must be an integer, not a quoted string"),
        ("redis:\n  port: abc\n", ":2:9: redis.port: 'abc' is not an integer"),
        ("dispatch:\n  batch: 0\n", ":2:10: dispatch.batch: 0 is out of range 1..100000"),
        ("redis:\n  port: 1\n  port: 2\n", ":3:3: duplicate key 'redis.port' (first at 2:3)"),
        ("redis: 5\n", ":1:8: redis must be a mapping, not a scalar"),
        ("routing:\n  on_missing_key: drop\n", "routing.on_missing_key: 'drop' must be one of dead_letter, payload"),
        ("worker:\n  retry_min_ms: 500\n  retry_max_ms: 100\n",
         ":3:17: worker.retry_max_ms (100) must be at least worker.retry_min_ms (500)"),
        ("redis:\n  sentinels: a:1\n", "redis.sentinels needs redis.sentinel_master"),
        ("redis:\n  password_file: nope\n", ":2:18: redis.password_file: cannot read 'nope'"),
    ]
    for text, want in cases:
        path = conf(tmp_path, text)
        with pytest.raises(ConfigError) as e:
            load_config(path)
        assert str(e.value).startswith(path), str(e.value)
        assert want in str(e.value), str(e.value)


def test_conf_values_and_secrets(tmp_path):
    (tmp_path / "pw").write_text("s3cret\n")
    path = conf(tmp_path, "redis:\n  port: 06380\n  password_file: pw\n  username: ~\n"
                          "  sentinels: \"h1:26379,[::1]:26380\"\n  sentinel_master: m\n"
                          "namespace: jobs\nrouting:\n  key_field: user\nworker:\n  prefetch: 64\nlog:\n")
    cfg = load_config(path)
    assert (cfg.port, cfg.password, cfg.username, cfg.namespace, cfg.key_field, cfg.prefetch) == \
        (6380, "s3cret", "", "jobs", "user", 64)
    assert cfg.sentinels == [("h1", 26379), ("::1", 26380)] and cfg.sentinel_master == "m"
    over = make_config(path, prefetch=8, namespace="other")
    assert over.prefetch == 8 and over.namespace == "other" and over.port == 6380
    with pytest.raises(ConfigError):
        make_config(None, prefetch=0)
    with pytest.raises(TypeError):
        make_config(None, prefetchh=1)


def test_dead_letter_entries():
    e = json.loads(slotd.format_entry("failed", "boom", b'{"id":7}', at_ms=1764000000000))
    assert e == {"reason": "failed", "detail": "boom", "at_ms": 1764000000000, "task": '{"id":7}'}
    assert list(e) == ["reason", "detail", "at_ms", "task"]
    # Not UTF-8: task_base64; a detail with bad bytes: U+FFFD per byte and the exact bytes.
    raw = slotd.format_entry("failed", b"ab\xffc\xe2\x82", b"\xff\x00x", at_ms=1)
    e = json.loads(raw)
    assert e["task_base64"] == base64.b64encode(b"\xff\x00x").decode() and "task" not in e
    assert e["detail"] == "ab\ufffdc\ufffd\ufffd"
    assert base64.b64decode(e["detail_base64"]) == b"ab\xffc\xe2\x82"
    back = slotd.parse_entry(raw)
    assert back["task"] == b"\xff\x00x" and back["detail"] == b"ab\xffc\xe2\x82"
    # NUL is valid in a task (\u0000), not in a detail.
    e = json.loads(slotd.format_entry("failed", "a\x00b", b"x\x00y", at_ms=1))
    assert e["task"] == "x\x00y" and "detail_base64" in e
    # Escaping that would grow past 4/3 of the task goes as base64.
    ctrl = bytes(range(1, 32)) * 200
    e = json.loads(slotd.format_entry("failed", "", ctrl, at_ms=1))
    assert base64.b64decode(e["task_base64"]) == ctrl


def test_the_config_table_is_slotds():
    # Every key of src/conf.c, with its kind, default and range, and no other.
    src = open(os.path.join(ROOT, "src", "conf.c")).read()
    table = {}
    for m in re.finditer(r'^\s+(STR|INT|ENUM)\("([a-z_.]+)", [\w.]+, "((?:[^"\\]|\\.)*)"(?:, (-?\d+), (-?\d+))?', src, re.M):
        kind, name, default = m.group(1).lower(), m.group(2), m.group(3).replace('\\"', '"')
        default = "" if default == '""' else default
        table[name] = (kind, int(default), int(m.group(4)), int(m.group(5))) if kind == "int" else (kind, default)
    from slotd.config import KEYS
    ours = {name: spec[:2] if spec[0] != "int" else spec for name, spec in KEYS.items()}
    assert ours == table
