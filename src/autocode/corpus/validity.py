"""What a note id and a note text may hold: one set of rules for loader, queue and output.

The review queue stores `note_id` as `String(MAX_ID_CHARS)` and text in a PostgreSQL
`text` column, which cannot hold NUL; Arrow and every UTF-8 writer refuse lone
surrogates (JSON can spell them, `"\\ud83d"`). The loader quarantines what these
rules reject, so nothing downstream ever meets such a value.
"""

from __future__ import annotations

import re

MAX_ID_CHARS = 255
MAX_QUOTED_CHARS = 32  # a code value repeated in a message: enough to recognise, no more

_NUL_OR_SURROGATE = re.compile("[\x00\ud800-\udfff]")
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")


def character_problem(field: str, value: str) -> str | None:
    """Why `value` cannot be stored as UTF-8 text in every store, naming only a position."""
    found = _NUL_OR_SURROGATE.search(value)
    if found is None:
        return None
    char = found.group()
    kind = "a NUL character" if char == "\x00" else f"a lone surrogate U+{ord(char):04X}"
    return f"{field} has {kind} at char {found.start()}"


def text_too_long(text: str, limit: int) -> str | None:
    """Why a note's text is over `limit` characters, or None."""
    if len(text) <= limit:
        return None
    return f"{len(text)} chars > limit {limit}"


def id_too_long(field: str, value: str) -> str | None:
    """Why `value` is too long for an id column, or None."""
    if len(value) <= MAX_ID_CHARS:
        return None
    return f"{field} of {len(value)} chars > limit {MAX_ID_CHARS}"


def capped(value: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`value` cut to `limit` characters, with '…' when something was cut."""
    return value if len(value) <= limit else value[:limit] + "…"


def cap_quoted(message: str, limit: int = MAX_QUOTED_CHARS) -> str:
    """`message` with every quoted value (as `repr` writes it) capped: a note pasted into a
    codes column must not reach a quarantine record whole through the error that names it.
    """
    return _QUOTED.sub(lambda quoted: _cap_repr(quoted.group(), limit), message)


def _cap_repr(quoted: str, limit: int) -> str:
    return f"{quoted[0]}{capped(quoted[1:-1], limit)}{quoted[0]}"
