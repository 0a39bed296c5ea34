"""Reading JSON that comes from outside (the API, webhook files, stored objects).

Python's json module accepts what JSON does not (NaN, Infinity) and gives up
on what it should report (deep nesting overflows the stack, invalid UTF-8
raises a decoding error). Here each becomes one ``BadJSON`` with a readable
reason, so a hostile or broken payload fails its own conversation with a clear
message and never poisons a later run. A lone UTF-16 surrogate (``"\\ud83d"``,
half an emoji) is valid JSON but cannot be written as UTF-8: it becomes
U+FFFD, visible, instead of failing every later write of the text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

MAX_DEPTH = 64  # ElevenLabs' conversations nest about 6 deep
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


class BadJSON(ValueError):
    """The text is not JSON fedfina accepts; str() says why in a few words."""


def _reject_constant(name: str) -> Any:
    raise BadJSON(f"{name} is not a JSON number")


def loads(data: bytes | str) -> Any:
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise BadJSON(f"not UTF-8 text (invalid byte at offset {exc.start})") from None
        escapes = _SURROGATE_ESCAPE.search(data) is not None
    else:
        text = data
        escapes = "\\u" in text
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise BadJSON("nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise BadJSON(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    if _depth_exceeds(value, MAX_DEPTH):
        raise BadJSON(f"nested more than {MAX_DEPTH} levels deep")
    return _repaired(value) if escapes or _SURROGATE.search(text) else value


def _depth_exceeds(value: Any, limit: int) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children: Iterable[Any]
        if isinstance(item, dict):
            children = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _repaired(value: Any) -> Any:
    """``value`` with lone surrogates in its strings (keys too) replaced by U+FFFD."""
    if isinstance(value, str):
        if _SURROGATE.search(value) is None:
            return value
        # Through UTF-16: a valid pair becomes its character, a lone half U+FFFD.
        return value.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")
    if isinstance(value, list):
        return [_repaired(v) for v in value]
    if isinstance(value, dict):
        return {_repaired(k): _repaired(v) for k, v in value.items()}
    return value
