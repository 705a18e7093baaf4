"""A printed line of the terminal summary: text pieces with pytest's colour markup, wrapped at 160 characters."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from pytest_accel.report.matrix import PLAIN, Markup

#: prose lines (verdict reasons, warnings, commands) wrap at this width, with a hanging indent; the tables do not
MAX_LINE_WIDTH = 160


@dataclass(frozen=True)
class Line:
    """One printed line, in pieces that each carry pytest's markup (``{"red": True, "bold": True}``)."""

    parts: tuple[tuple[str, Markup], ...] = ()

    @classmethod
    def of(cls, text: str, markup: Markup = PLAIN) -> Line:
        return cls(((text, markup),))

    @property
    def text(self) -> str:
        return "".join(text for text, _ in self.parts)

    def wrapped(self, width: int = MAX_LINE_WIDTH) -> Iterator[Line]:
        """This line in lines of at most ``width`` characters, broken at spaces (a word longer than a line, such as
        a path, stays whole), continued under a 4-space indent deeper than its own; markup is kept."""
        text = self.text
        if len(text) <= width:
            yield self
            return
        indent = " " * (len(text) - len(text.lstrip(" ")) + 4)
        start, room = 0, width
        while start < len(text):
            end = len(text) if len(text) - start <= room else text.rfind(" ", start + 1, start + room + 1)
            if end <= start:  # no space within reach: break after the long word
                end = text.find(" ", start + room)
                end = len(text) if end < 0 else end
            piece = self._slice(start, end)
            yield Line(piece if start == 0 else ((indent, PLAIN), *piece))
            start, room = end + 1, width - len(indent)

    def _slice(self, start: int, end: int) -> tuple[tuple[str, Markup], ...]:
        pieces, offset = [], 0
        for text, markup in self.parts:
            low, high = max(start - offset, 0), min(end - offset, len(text))
            if low < high:
                pieces.append((text[low:high], markup))
            offset += len(text)
        return tuple(pieces)


def wrapped(lines: Iterator[Line]) -> Iterator[Line]:
    """Each line wrapped at :data:`MAX_LINE_WIDTH`."""
    for line in lines:
        yield from line.wrapped()


def aligned_table(rows: list[list[str]], indent: str = "  ") -> Iterator[str]:
    """Rows of cells as lines with every column padded to its widest cell (the terminal's plain tables)."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        yield indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
