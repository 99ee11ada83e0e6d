"""Overlap decoding, computing and encoding: each runs in its own thread, joined by bounded
queues (so memory stays bounded), with exceptions carried back to the main thread.

PyAV and torch release the GIL in their heavy calls, so the decoder and encoder threads run
while the model computes.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any

_DONE = object()


class BackgroundIterator:
    """Iterates ``iterable`` in a thread, ``maxsize`` items ahead of the consumer.

    It never closes ``iterable``: items may depend on it (packets on their open input), so
    its owner closes it, after ``close()`` here has stopped the thread."""

    def __init__(self, iterable: Iterable[Any], maxsize: int = 16, name: str = "stvsr-reader"):
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(iterable,), name=name, daemon=True)
        self._thread.start()

    def _put(self, item) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _run(self, iterable) -> None:
        try:
            for item in iterable:
                if not self._put(("item", item)):
                    return
            self._put(("done", None))
        except BaseException as e:  # noqa: BLE001 - carried to the consumer and re-raised there
            self._put(("error", e))

    def __iter__(self) -> Iterator[Any]:
        while True:
            kind, item = self._queue.get()
            if kind == "item":
                yield item
            elif kind == "error":
                raise item
            else:
                return

    def close(self) -> bool:
        """Stop the thread; returns whether it has stopped (it is left running, as a daemon,
        only when the iterable hangs for more than 5 s)."""
        self._stop.set()
        self._thread.join(timeout=5)
        return not self._thread.is_alive()


class BackgroundWorker:
    """Runs submitted calls in order in one thread (e.g. every call on an output container).

    An exception in a call stops the worker; it is re-raised by the next ``submit`` or by
    ``finish``.
    """

    def __init__(self, maxsize: int = 8, name: str = "stvsr-writer"):
        self._queue: queue.Queue = queue.Queue(maxsize)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            call = self._queue.get()
            if call is _DONE:
                return
            if self._error is not None:
                continue  # drain after a failure
            fn, args = call
            try:
                fn(*args)
            except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
                self._error = e

    def submit(self, fn: Callable[..., Any], *args: Any) -> None:
        if self._error is not None:
            raise self._error
        while True:
            try:
                self._queue.put((fn, args), timeout=0.1)
                return
            except queue.Full:
                if self._error is not None or not self._thread.is_alive():
                    raise (self._error or RuntimeError("writer thread stopped")) from None

    def finish(self) -> None:
        """Wait for every submitted call; re-raise the first failure."""
        self._queue.put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error

    def abandon(self) -> None:
        """Stop after the calls already queued, without raising (cleanup after an error)."""
        try:
            self._queue.put(_DONE, timeout=1)
        except queue.Full:
            self._error = self._error or RuntimeError("abandoned")
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._queue.put(_DONE)
        self._thread.join(timeout=30)
