"""The one translation of DuckDB's exceptions into the platform's errors.

Every statement of the adapter runs inside :func:`translated` (the catalog's ``transaction`` and
``query`` and the opening of the file do), so a caller sees :class:`~shiftboard.domain.errors.ShiftboardError`
for what can happen to a healthy gateway, with the cause and the fix:

* the file held by another process (DuckDB allows one writer per file) → ``Unavailable``;
* another read or write failure of the file (a full disk, a lost mount) → ``Unavailable``;
* DuckDB's memory limit reached → ``ResourceExhausted`` (``SHIFTBOARD_CATALOG_MEMORY_MB``);
* a write conflicting with a concurrent transaction, or interrupted → ``Unavailable`` (retry);
* a duplicate key → ``AlreadyExists``.

Everything else DuckDB raises (parser, binder and catalog errors, constraint violations other than
a duplicate key, conversions, internal errors) is a defect of this adapter, not of the request: it
is left as it is, so the gateway's edge reports INTERNAL and logs the traceback. :data:`DEFECTS`
names those classes; the tests check that every exception class DuckDB defines is one or the other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import duckdb

from shiftboard.domain.errors import AlreadyExists, ResourceExhausted, ShiftboardError, Unavailable

#: Markers of a lock held by another process in DuckDB's IOException text.
_LOCK_MARKERS = ("Could not set lock", "Conflicting lock")


def _io(exc: duckdb.Error, path: str) -> ShiftboardError:
    if any(marker in str(exc) for marker in _LOCK_MARKERS):
        return Unavailable(f"the catalog {path} is open in another process (one gateway per catalog file): "
                           "stop that gateway (`shiftboard down`) or set SHIFTBOARD_CATALOG_PATH to another file")
    return Unavailable(f"the catalog {path} could not be read or written ({_first_line(exc)}): check the disk "
                       "and the file's permissions, then retry")


def _memory(exc: duckdb.Error, path: str) -> ShiftboardError:
    return ResourceExhausted(f"the catalog {path} ran out of memory ({_first_line(exc)}): retry later, or raise "
                             "SHIFTBOARD_CATALOG_MEMORY_MB")


def _conflict(exc: duckdb.Error, path: str) -> ShiftboardError:
    return Unavailable(f"a concurrent write to the catalog {path} got in the way ({_first_line(exc)}): retry")


def _constraint(exc: duckdb.Error, path: str) -> ShiftboardError | None:
    if "Duplicate key" not in str(exc):
        return None
    return AlreadyExists(f"the catalog {path} holds this row already ({_first_line(exc)}): choose another name")


Translator = Callable[[duckdb.Error, str], "ShiftboardError | None"]

#: DuckDB's exception classes that a healthy gateway can meet, most specific first.
TRANSLATIONS: tuple[tuple[type[duckdb.Error], Translator], ...] = (
    (duckdb.OutOfMemoryException, _memory),
    (duckdb.IOException, _io),  # HTTPException included
    (duckdb.ConnectionException, _io),
    (duckdb.PermissionException, _io),
    (duckdb.TransactionException, _conflict),
    (duckdb.SerializationException, _conflict),
    (duckdb.InterruptException, _conflict),
    (duckdb.ConstraintException, _constraint),
)

#: DuckDB's exception classes left untranslated, each named (a class DuckDB adds must be classified):
#: a defect of the adapter, reported as INTERNAL at the edge with its traceback logged.
DEFECTS: tuple[type[duckdb.Error], ...] = (
    duckdb.Error, duckdb.DatabaseError, duckdb.OperationalError,
    duckdb.ProgrammingError, duckdb.BinderException, duckdb.CatalogException, duckdb.InvalidInputException,
    duckdb.InvalidTypeException, duckdb.ParserException, duckdb.SyntaxException,
    duckdb.DataError, duckdb.ConversionException, duckdb.OutOfRangeException, duckdb.TypeMismatchException,
    duckdb.IntegrityError,  # ConstraintException other than a duplicate key, too
    duckdb.InternalError, duckdb.InternalException, duckdb.FatalException,
    duckdb.NotSupportedError, duckdb.NotImplementedException,
    duckdb.DependencyException, duckdb.SequenceException,
)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def translate(exc: duckdb.Error, path: str) -> ShiftboardError | None:
    """The platform's error for ``exc`` (raised on the catalog at ``path``), or None for a defect."""
    for cls, translator in TRANSLATIONS:
        if isinstance(exc, cls):
            return translator(exc, path)
    return None


@contextmanager
def translated(path: str) -> Iterator[None]:
    """Raise DuckDB's exceptions inside as the platform's errors (see :func:`translate`)."""
    try:
        yield
    except duckdb.Error as exc:
        error = translate(exc, path)
        if error is None:
            raise
        raise error from exc
