"""Dead-letter entries in the format of docs/protocol.md (*What cannot be
routed*), the same as slotd and libslotd write (src/deadletter.c):

    {"reason":"failed","detail":"...","at_ms":1764000000000,"task":"..."}

The task's bytes are recoverable exactly: from ``task`` when they are valid
UTF-8 and escaping does not grow the entry past about 4/3 of the task, else
from ``task_base64``. A reason or detail that is not UTF-8 (or holds a NUL)
comes with U+FFFD for each bad byte, and the exact bytes in
``<name>_base64``.
"""
from __future__ import annotations

import base64
import codecs
import json
import time
from typing import Any, Dict, Optional, Tuple, Union


def _per_byte(err: UnicodeError) -> Tuple[str, int]:
    # One U+FFFD for each byte that is not part of a valid sequence, as
    # src/bytes.c does (Python's own "replace" may take several bytes as one).
    assert isinstance(err, UnicodeDecodeError)
    return "\ufffd" * (err.end - err.start), err.end


codecs.register_error("slotd-per-byte", _per_byte)


def _set_bytes(obj: Dict[str, Any], name: str, raw: bytes) -> None:
    try:
        shown = raw.decode("utf-8")
        lossy = False
    except UnicodeDecodeError:
        shown = raw.decode("utf-8", "slotd-per-byte")
        lossy = True
    if "\x00" in shown:
        shown = shown.replace("\x00", "\ufffd")
        lossy = True
    obj[name] = shown
    if lossy:
        obj[name + "_base64"] = base64.b64encode(raw).decode("ascii")


def _as_bytes(text: Union[str, bytes]) -> bytes:
    if isinstance(text, bytes):
        return text
    return text.encode("utf-8", "surrogatepass")


def _dump(obj: Dict[str, Any]) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def format_entry(reason: Union[str, bytes], detail: Union[str, bytes, None], task: bytes,
                 at_ms: Optional[int] = None) -> bytes:
    """The dead-letter entry for task, as bytes ready to LPUSH onto ``{ns}:dead``."""
    obj: Dict[str, Any] = {}
    _set_bytes(obj, "reason", _as_bytes(reason))
    _set_bytes(obj, "detail", _as_bytes(detail or b""))
    obj["at_ms"] = int(time.time() * 1000) if at_ms is None else int(at_ms)
    try:
        text: Optional[str] = task.decode("utf-8")
    except UnicodeDecodeError:
        text = None
    if text is not None:
        entry = _dump(dict(obj, task=text))
        if len(entry) <= len(task) // 3 * 4 + 4 + 1024:
            return entry
    return _dump(dict(obj, task_base64=base64.b64encode(task).decode("ascii")))


def parse_entry(entry: Union[bytes, str]) -> Dict[str, Any]:
    """A dead-letter entry as a dict, with ``task`` (and ``detail``) as the
    exact original bytes, whichever field carried them."""
    obj = json.loads(entry)
    if not isinstance(obj, dict):
        raise ValueError("a dead letter is a JSON object")
    out = dict(obj)
    for name in ("task", "detail", "reason"):
        if name + "_base64" in obj:
            out[name] = base64.b64decode(obj[name + "_base64"])
        elif isinstance(obj.get(name), str):
            out[name] = obj[name].encode("utf-8", "surrogatepass")
        out.pop(name + "_base64", None)
    return out
