"""Validation of user-chosen names (models, versions, test sets, groups, tokens, tags).

Names become object-store keys, Triton model-repository directories and DuckDB values, so they are
restricted to a portable alphabet: no path separators, no ``..``, no control characters.
"""

from __future__ import annotations

import re

from shiftboard.domain.errors import InvalidArgument

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def validate_name(value: str, what: str = "name") -> str:
    """Return ``value`` if it is a valid name, else raise :class:`InvalidArgument` saying why."""
    if not value:
        raise InvalidArgument(f"{what} is empty: give 1-64 characters from A-Z a-z 0-9 . _ -")
    if any(ord(c) < 32 or ord(c) == 127 for c in value):
        raise InvalidArgument(f"{what} {value!r} contains control characters: use only A-Z a-z 0-9 . _ -")
    if "/" in value or "\\" in value:
        raise InvalidArgument(f"{what} {value!r} contains a path separator: use only A-Z a-z 0-9 . _ -")
    if ".." in value:
        raise InvalidArgument(f"{what} {value!r} contains '..': use only A-Z a-z 0-9 . _ - without '..'")
    if len(value) > 64:
        raise InvalidArgument(f"{what} {value[:20]!r}... is {len(value)} characters long: at most 64")
    if not _NAME.match(value):
        raise InvalidArgument(
            f"{what} {value!r} is not valid: start with a letter or digit, then use only A-Z a-z 0-9 . _ -"
        )
    return value
