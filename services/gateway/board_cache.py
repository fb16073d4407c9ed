"""Computed leaderboards, remembered while what they depend on is unchanged.

A bounded, thread-safe LRU map (:class:`Lru`), each entry stored with a *stamp*:

* **boards**: a request's serialized answer (``GetLeaderboard``'s message, ``GetOverview``'s stream),
  keyed by every field that changes the answer (shift or group specs, transform, resamples, extremes)
  and stamped by :func:`dependency_stamp`, one catalog query over everything the board reads: the
  evaluations on the shifts and their references (id, status, ``updated_at``, samples committed), the
  models' rows (category and tags), the imported sources' versions, the count of exact restricted
  reference scores, the registered test sets, and the gateway's baseline settings. A commit, a
  finish, a delete, an import or a new test set changes the stamp, so an entry whose stamp differs
  from the current one is dropped, never served. The per-evaluation aggregates a board is computed
  from (:mod:`.aggregates`) are a function of those evaluations' rows, which set ``updated_at``, and
  of the registered shifts' classes, so a change to them changes the stamp too.

The stamp is read *before* the data, so a board computed from newer data than its stamp is at worst
recomputed, never stale. Entries larger than the map's byte bound are not kept. Evaluations' columns
are not kept here: boards read stored aggregates (a few KB per evaluation), never predictions.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from shiftboard.adapters.duckdb.catalog import Catalog
    from shiftboard.settings import Settings

#: Boards kept at most, and their serialized bytes in all.
BOARD_ENTRIES = 256
BOARD_BYTES = 64 * 2**20

V = TypeVar("V")


@dataclass(frozen=True)
class LruStats:
    """Counters of one map: lookups answered, lookups not (absent or stale), entries dropped for room."""

    hits: int
    misses: int
    stale: int
    evictions: int
    entries: int
    bytes: int


class Lru(Generic[V]):
    """A thread-safe LRU map bounded in entries and in bytes (``size_of`` of each value)."""

    def __init__(self, max_entries: int, max_bytes: int, size_of: Callable[[V], int]) -> None:
        if max_entries < 1 or max_bytes < 1:
            raise ValueError("an LRU needs room for at least one entry and one byte")
        self.max_entries, self.max_bytes = max_entries, max_bytes
        self._size_of = size_of
        self._items: OrderedDict[Hashable, tuple[Hashable, V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._hits = self._misses = self._stale = self._evictions = 0

    def get(self, key: Hashable, stamp: Hashable) -> V | None:
        """The value stored under ``key`` with this ``stamp``; None (and the entry dropped) otherwise."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                self._misses += 1
                return None
            if item[0] != stamp:
                self._drop(key)
                self._misses += 1
                self._stale += 1
                return None
            self._items.move_to_end(key)
            self._hits += 1
            return item[1]

    def put(self, key: Hashable, stamp: Hashable, value: V) -> None:
        size = self._size_of(value)
        with self._lock:
            if key in self._items:
                self._drop(key)
            if size > self.max_bytes:
                return
            self._items[key] = (stamp, value, size)
            self._bytes += size
            while len(self._items) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(self._items)))
                self._evictions += 1

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self._bytes = 0

    def stats(self) -> LruStats:
        with self._lock:
            return LruStats(self._hits, self._misses, self._stale, self._evictions, len(self._items), self._bytes)

    def _drop(self, key: Hashable) -> None:
        self._bytes -= self._items.pop(key)[2]


def _blobs_size(value: Sequence[bytes]) -> int:
    return sum(len(b) for b in value) + 64


class BoardCache:
    """The gateway's map of serialized boards (a list of messages' bytes per request)."""

    def __init__(self, *, board_entries: int = BOARD_ENTRIES, board_bytes: int = BOARD_BYTES) -> None:
        self.boards: Lru[tuple[bytes, ...]] = Lru(board_entries, board_bytes, _blobs_size)

    @staticmethod
    def key(*parts: object) -> str:
        """A short key for a request: the digest of its parts (bytes as they are, the rest as ``repr``)."""
        digest = hashlib.sha256()
        for part in parts:
            data = part if isinstance(part, bytes) else repr(part).encode()
            digest.update(len(data).to_bytes(8, "little"))
            digest.update(data)
        return digest.hexdigest()


_STAMP_SQL = """
WITH wanted AS (SELECT id, status, updated_at, run_samples FROM evaluations WHERE {where})
SELECT
  (SELECT count(*) FROM wanted),
  (SELECT coalesce(md5(string_agg(concat_ws('/', id, status, epoch_us(updated_at), run_samples), ',' ORDER BY id)),
                   '') FROM wanted),
  (SELECT count(*) FROM restricted_correct WHERE evaluation_id IN (SELECT id FROM wanted)),
  (SELECT coalesce(md5(string_agg(concat_ws('/', name, version, category, array_to_string(tags, ';'),
                                            epoch_us(created_at)), ',' ORDER BY name, version)), '') FROM models),
  (SELECT coalesce(string_agg(concat_ws('/', source, version, epoch_us(imported_at)), ',' ORDER BY source), '')
     FROM imported_sources),
  (SELECT concat_ws('/', count(*), coalesce(epoch_us(max(created_at)), 0)) FROM testsets),
  (SELECT count(*) FROM declared_testsets)
"""


def dependency_stamp(catalog: Catalog, settings: Settings, testsets: Sequence[str] | None) -> tuple[object, ...]:
    """What a board over ``testsets`` (shifts and their references; None: every test set) reads, in
    one query, with the gateway's baseline settings."""
    if testsets is None:
        sql, params = _STAMP_SQL.format(where="true"), []
    else:
        sql, params = _STAMP_SQL.format(where="list_contains(?, testset)"), [sorted(set(testsets))]
    row = catalog.query(sql, params)[0]
    return (*row, settings.baseline_categories, settings.min_reference_accuracy)
