"""Cleaning up: what a deleted model or test set leaves in the object store, and uploads never registered.

The catalog transaction comes first (:meth:`~shiftboard.adapters.duckdb.registry.ModelRows.delete_model`,
:meth:`~shiftboard.adapters.duckdb.registry.TestSetRows.delete_testset`); the objects go after it: the
artifact or the shards, and the logits the worker stored for each removed pair (``logits/<model>/<version>/
<test set>/``, :func:`shiftboard.flows.evaluate.logits_key`). An object that cannot be deleted is logged and
left: the catalog never names it again, so nothing reads it.

:class:`UploadJanitor` is a thread of the gateway that removes expired uploads
(:meth:`~.testset_rpcs.TestSetRpcs.sweep_uploads`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from shiftboard.adapters.duckdb.registry import Deleted
from shiftboard.adapters.s3 import ObjectStore
from shiftboard.domain.errors import ShiftboardError
from shiftboard.settings import Settings

log = logging.getLogger(__name__)


def logits_prefix(model: str, version: str, testset: str) -> str:
    """Where the worker stores one pair's logits (with ``SHIFTBOARD_STORE_LOGITS``)."""
    return f"logits/{model}/{version}/{testset}/"


def remove_objects(store: ObjectStore, deleted: Deleted, what: str) -> None:
    """Delete ``deleted``'s objects and its pairs' logits; a failure is logged, never raised (the catalog
    rows are gone already)."""
    try:
        store.delete(*deleted.keys)
        for model, version, testset in deleted.pairs:
            store.delete_prefix(logits_prefix(model, version, testset))
    except ShiftboardError as exc:
        log.warning("%s: could not delete all of its objects (%d key(s); left in the object store): %s", what,
                    len(deleted.keys), exc.message)


class UploadJanitor:
    """A thread of the gateway that calls ``sweep`` (:meth:`~.testset_rpcs.TestSetRpcs.sweep_uploads`) every
    ``period_s``: half the upload lifetime (``settings.upload_url_ttl_s``), between 1 s and 60 s."""

    def __init__(self, sweep: Callable[[], object], settings: Settings) -> None:
        self.sweep = sweep
        self.period_s = max(1.0, min(60.0, settings.upload_url_ttl_s / 2))
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="upload-janitor", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._closed.set()
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=self.period_s + 5)

    def _run(self) -> None:
        while not self._closed.wait(self.period_s):
            try:
                self.sweep()
            except Exception as exc:  # noqa: BLE001 - the store down for a moment: the next round tries again
                if self._closed.is_set():
                    return
                log.warning("the upload janitor failed (it tries again in %.0f s): %s", self.period_s,
                            getattr(exc, "message", None) or exc)
