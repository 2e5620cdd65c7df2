"""Bounds on what a record may carry, so that every stored number and id stays meaningful.

The ingest endpoints are public in practice (a storefront key is in every visitor's
browser), so a record must not be able to push a sum to Infinity, overflow a mapped
integer, collide with another store's ids, exceed Elasticsearch's 512-byte `_id`, or
nest deeper than the mapping allows. Every limit here is far above what a large store
sends; docs/importing.md ("Limits") lists them.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

# -- numbers ----------------------------------------------------------------------------
# Every amount, as sent and in the base currency after fx, and every line and order total
# derived from them. A sum over a billion such documents is still a finite double.
MAX_AMOUNT = 1e12
# fx_rate (base units per unit of the record's currency): `amount * fx` and `amount / fx`
# stay finite and within MAX_AMOUNT-ish magnitudes.
MIN_FX_RATE = 1e-6
MAX_FX_RATE = 1e6
# Per order line; an order's `units` (up to 1000 lines) stays inside an ES `integer`.
MAX_QUANTITY = 1_000_000
MAX_ORDER_LINES = 1000
INT32_MAX = 2**31 - 1
# Counts mapped as ES `integer` (stock, reorder point, search results).
MAX_COUNT = 1_000_000_000
MAX_INSTALLMENTS = 1000
MAX_DURATION_MS = 365 * 24 * 3600 * 1000  # one year, mapped as `long`

# -- ids and stores ---------------------------------------------------------------------
# Elasticsearch limits `_id` to 512 bytes. The longest stored id is an order line's
# `<store>:<order_id>:<line>`: 64 + 1 + 256 + 1 + 4 = 326 bytes.
MAX_ID_BYTES = 256
STORE_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"
_STORE_ID = re.compile(STORE_ID_PATTERN)
# Control, format (bidi, zero-width, BOM), line/paragraph separators, surrogates, private use.
REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Zl", "Zp", "Cs", "Co"})

# -- free-form objects (`properties` on events, `attributes` on orders: ES `flattened`) --
# Depth counts the object itself as 1 and every nested object or array as one more
# (flattened's own depth_limit is 20, counting objects only).
MAX_FREE_FORM_DEPTH = 10
MAX_FREE_FORM_KEYS = 256  # keys at all levels together
MAX_FREE_FORM_VALUES = 1000  # scalar values at all levels, each array element counted
MAX_KEY_BYTES = 256
MAX_STRING_CHARS = 4096  # so a flattened term (path + value) stays far below Lucene's 32 KiB
# Anything nested deeper than this below a raw record is refused before it is serialised
# (orjson stops at 255 levels). Only free-form objects nest beyond 2 levels, and a
# record's own fields are at depth 1, so this is the free-form rule seen from the record.
MAX_RECORD_DEPTH = MAX_FREE_FORM_DEPTH


class FieldError(ValueError):
    """A ValueError that names the field at fault, as a path below the validated object.

    pydantic keeps it in the error's `ctx["error"]`; `errors.validation_details` appends
    `field_loc` to the error's `loc`, so model-level checks name their field too.
    """

    def __init__(self, loc: str | int | tuple[str | int, ...], message: str) -> None:
        self.field_loc: tuple[str | int, ...] = loc if isinstance(loc, tuple) else (loc,)
        self.message = message
        super().__init__(message)

    @property
    def field(self) -> str:
        return ".".join(str(part) for part in self.field_loc)


def refused_character(text: str) -> str | None:
    """The first control/format/separator/surrogate/private-use character of `text`, if any."""
    if text.isascii() and text.isprintable():
        return None  # in ASCII only the Cc characters (0x00-0x1F, 0x7F) are refused, and none is printable
    for c in text:
        if unicodedata.category(c) in REFUSED_CATEGORIES:
            return c
    return None


def check_id(value: str) -> str:
    """An id: at most MAX_ID_BYTES of UTF-8, no refused characters."""
    c = refused_character(value)
    if c is not None:
        raise ValueError(f"must not contain control or format characters (found U+{ord(c):04X})")
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > MAX_ID_BYTES:
        raise ValueError(f"must be at most {MAX_ID_BYTES} bytes of UTF-8 (this one is {size})")
    return value


def check_store_id(value: str) -> str:
    """A store id: letters, digits, '.', '_' and '-', starting with a letter or digit, 1-64 long.

    No ':' (document ids are `<store>:<id>`, so `acme` + `eu:1` could otherwise be
    `acme:eu` + `1`), and nothing a URL, a log line or an index name would mangle.
    """
    if not _STORE_ID.fullmatch(value):
        raise ValueError("must be 1-64 characters: letters, digits, '.', '_' or '-', starting with a letter or digit")
    return value


def check_amount(field: str | tuple[str | int, ...], value: float | None, what: str = "in the base currency") -> None:
    """Raise FieldError when a (derived) amount is beyond MAX_AMOUNT in magnitude or not finite."""
    if value is not None and not -MAX_AMOUNT <= value <= MAX_AMOUNT:  # NaN fails both comparisons
        raise FieldError(field, f"{value:.6g} {what} is beyond the limit of {MAX_AMOUNT:.0e}")


def too_deep(value: Any, limit: int) -> tuple[str | int, ...] | None:
    """The path of the first object or array nested deeper than `limit` below `value`, or None.

    Iterative, so that it can look at any depth (recursive serialisers and validators
    cannot). The direct children of `value` are at depth 1.
    """
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in children:
            if isinstance(child, (dict, list)):
                if len(path) + 1 > limit:
                    return (*path, key)
                stack.append((child, (*path, key)))
    return None


def check_free_form(value: dict[str, Any]) -> dict[str, Any]:
    """Depth, key count, key size and value size of a free-form object; FieldError names the spot."""
    keys = values = 0
    stack: list[tuple[Any, tuple[str | int, ...]]] = [(value, ())]
    while stack:
        node, path = stack.pop()
        if len(path) >= MAX_FREE_FORM_DEPTH and isinstance(node, (dict, list)) and path:
            raise FieldError(path, f"nested deeper than {MAX_FREE_FORM_DEPTH} levels")
        if isinstance(node, dict):
            for key, child in node.items():
                keys += 1
                if keys > MAX_FREE_FORM_KEYS:
                    raise FieldError(path, f"more than {MAX_FREE_FORM_KEYS} keys in all")
                if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
                    raise FieldError(path, f"a key is longer than {MAX_KEY_BYTES} bytes")
                if refused_character(key) is not None:
                    raise FieldError(path, "a key contains control or format characters")
                stack.append((child, (*path, key)))
        elif isinstance(node, list):
            stack.extend((child, (*path, i)) for i, child in enumerate(node))
        else:
            values += 1
            if values > MAX_FREE_FORM_VALUES:
                raise FieldError(path, f"more than {MAX_FREE_FORM_VALUES} values in all")
            if isinstance(node, str) and len(node) > MAX_STRING_CHARS:
                raise FieldError(path, f"string longer than {MAX_STRING_CHARS} characters")
    return value
