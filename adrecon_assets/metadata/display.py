"""Lake strings (offer ids, placements, user ids) as the UI shows them: as text, whatever they
hold. A lake string may carry Markdown, HTML, control characters or a megabyte of text; the UI
renders Markdown metadata (and check descriptions, alerts and chart titles quote lake strings),
so each is made visible and short before it is shown. Numbers never go through here.
"""

from __future__ import annotations

import re
import unicodedata

# Longer values are cut for display (an id is a few dozen characters at most).
MAX_DISPLAY_CHARS = 80
ELLIPSIS = "…"
# Every ASCII punctuation character may be backslash-escaped in CommonMark, which makes it
# literal: emphasis, links, code spans, headings, tables (|) and autolinks lose their meaning.
MARKDOWN_PUNCTUATION = re.compile(r"([!\"#$%'()*+,\-./:;=?@\[\\\]^_`{|}~])")
# HTML is written as entities (CommonMark renders them as the characters, never as tags).
HTML_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def visible_character(character: str) -> str:
    """A control or format character (newline, escape, bidi override, ...) as its escape."""
    if unicodedata.category(character) in {"Cc", "Cf", "Zl", "Zp"}:
        code = ord(character)
        return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"
    return character


def display_text(value: object, limit: int = MAX_DISPLAY_CHARS) -> str:
    """`value` as one line of plain text: control characters shown as escapes, cut to `limit`
    characters (with … and the full length) when longer."""
    text = str(value)
    shown = "".join(visible_character(c) for c in text[:limit])
    if len(text) > limit:
        shown += f"{ELLIPSIS} ({len(text):,} characters)"
    return shown


def markdown_text(value: object, limit: int = MAX_DISPLAY_CHARS) -> str:
    """`value` as literal text inside Markdown (a table cell included): `display_text`, with
    Markdown punctuation backslash-escaped and HTML's special characters as entities."""
    escaped = MARKDOWN_PUNCTUATION.sub(r"\\\1", display_text(value, limit))
    return "".join(HTML_ENTITIES.get(c, c) for c in escaped)


def chart_text(value: object, limit: int = MAX_DISPLAY_CHARS) -> str:
    """`value` as a Matplotlib title: `display_text` with `$` escaped (a pair of `$` would
    start mathtext, which fails to draw on malformed input)."""
    return display_text(value, limit).replace("$", r"\$")
