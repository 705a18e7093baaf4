"""Text from tests, devices and files, made safe where it leaves the plugin: :func:`terminal_text` for the terminal
(no control characters: an ANSI escape in a metric name must not recolour or rewrite the screen) and
:func:`markdown_text` / :func:`markdown_code` for Markdown (no raw HTML, no markup the text did not mean)."""

from __future__ import annotations

import re

#: C0 and C1 controls, DEL, line and paragraph separators, and the bidirectional overrides that reorder what is shown
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069]")
#: what Markdown (GitHub's included) would read as markup in running text or a table cell (not `_`: names are full of
#: it, and inside a word it emphasises nothing)
_MARKDOWN_SPECIAL = re.compile(r"([\\`*\[\]|~#!])")
_HTML = {"&": "&amp;", "<": "&lt;", ">": "&gt;"}


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_text(text: str) -> str:
    """``text`` as one line of plain characters: each control character shown as its escape (``\\x1b``, ``\\n``
    as ``\\x0a``)."""
    return _CONTROL.sub(_escaped, text)


def printable_text(text: str) -> str:
    """``text`` with every character that is not printable (``str.isprintable``: controls, separators, format
    characters such as U+200B) shown as its escape: what a saved report holds, since its reader refuses the rest."""
    return "".join(char if char.isprintable() else _escape(char) for char in text)


def _escape(char: str) -> str:
    code = ord(char)
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


def markdown_text(text: str) -> str:
    """``text`` as Markdown that shows exactly it: controls escaped, HTML as entities, markup characters escaped."""
    plain = _MARKDOWN_SPECIAL.sub(r"\\\1", terminal_text(text))
    return "".join(_HTML.get(char, char) for char in plain)


def markdown_code(text: str) -> str:
    """``text`` as inline code (shown literally, HTML included) that survives backticks and table cells."""
    plain = terminal_text(text).replace("|", "\\|")
    fence = "``" if "`" in plain else "`"
    padding = " " if plain.startswith("`") or plain.endswith("`") else ""
    return f"{fence}{padding}{plain}{padding}{fence}"
