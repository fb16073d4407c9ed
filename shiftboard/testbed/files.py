"""Reading the files that imported results come in: bytes or a path, UTF-8 text, CSV rows, problems.

Every problem is an :class:`~shiftboard.domain.errors.InvalidArgument`; :class:`Problems` collects up
to five of a file's problems and raises them together, so one pass shows what to fix.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path

from shiftboard.domain.errors import InvalidArgument

__all__ = ["Problems", "Source", "csv_rows", "number", "read_bytes", "utf8_text"]

#: A file to read: a path, or its content as bytes. A ``str`` with a line break is the content itself.
Source = str | bytes | os.PathLike[str]
_MAX_PROBLEMS = 5


def read_bytes(source: Source, what: str) -> tuple[bytes, str]:
    """(content, a name for messages)."""
    if isinstance(source, bytes):
        return source, what
    if isinstance(source, str) and ("\n" in source or "\r" in source):
        return source.encode("utf-8"), what
    path = Path(source)
    try:
        return path.read_bytes(), path.name
    except OSError as exc:
        raise InvalidArgument(f"cannot read {what} {str(path)!r}: {exc.strerror or exc}: give the path of "
                              "an existing, readable file") from None


def utf8_text(content: bytes, name: str) -> str:
    try:
        return content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{name} is not UTF-8 text (byte {exc.start}): save it as UTF-8 CSV") from None


class Problems:
    """Collects up to a few problems, then raises them together."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.items: list[str] = []
        self.count = 0

    def add(self, message: str) -> None:
        self.count += 1
        if len(self.items) < _MAX_PROBLEMS:
            self.items.append(message)

    def raise_if_any(self) -> None:
        if not self.count:
            return
        more = f" (and {self.count - len(self.items)} more)" if self.count > len(self.items) else ""
        raise InvalidArgument(f"{self.name}: " + "; ".join(self.items) + more)


def csv_rows(text: str) -> list[list[str]]:
    try:
        return list(csv.reader(io.StringIO(text)))
    except csv.Error as exc:
        raise InvalidArgument(f"not a CSV file ({exc}): give comma-separated values with a header row") from None


def number(cell: str) -> float | None:
    """The cell as a float; None when empty; NaN when it is not a number."""
    value = cell.strip()
    if value == "" or value.lower() in ("nan", "na", "null"):
        return None
    try:
        return float(value)
    except ValueError:
        return math.nan
