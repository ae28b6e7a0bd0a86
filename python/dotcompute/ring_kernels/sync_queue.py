"""Thread-safe blocking queues for the threaded tier: ``SyncQueue`` and ``SPSCQueue``.

Both are the runtime's Rust queue, used from plain threads: a blocking
``put``/``get`` releases the GIL while it waits, and wakes as soon as there
is room / a message (no polling), or at ``shutdown()``.

Fixes over PyDotCompute:

* ``SPSCQueue.put`` on a full queue waits for room (``False`` on timeout or
  shutdown); PyDotCompute's overwrote the ring and lost every buffered item.
* ``SPSCQueue(n)`` holds ``n`` items (PyDotCompute rounded up to a power of
  two and kept one slot free, so ``SPSCQueue(1)`` held nothing).
* ``get`` has no lost-wake-up window.

The SPSC queue is single-producer/single-consumer by contract only: the
queue underneath is safe for any number of threads.
"""

from __future__ import annotations

from typing import Any

from dotcompute import _native
from dotcompute.exceptions import QueueClosedError, QueueFullError, QueueTimeoutError


class SyncQueue(_native.Queue):
    """``SyncQueue(maxsize=4096)`` (0: unbounded): FIFO, blocking, thread-safe.

    ``put(item, timeout=None) -> True`` (full at the deadline, or at once with
    ``timeout=0``: ``QueueFullError``); ``get(timeout=None)`` (expired:
    ``QueueTimeoutError``); after ``shutdown()``, ``put`` raises
    ``RuntimeError("Queue is shutdown")`` and ``get`` drains what is left, then
    raises ``RuntimeError("Queue is shutdown and empty")``.
    """

    def __new__(cls, maxsize: int = 4096) -> SyncQueue:
        return super().__new__(cls, maxsize, backpressure="block", use_priority=False, kernel_id="sync_queue")

    def __init__(self, maxsize: int = 4096) -> None:
        pass

    def put(self, item: Any, timeout: float | None = None) -> bool:  # type: ignore[override]
        try:
            self.put_blocking(item, timeout)
        except QueueClosedError:
            raise RuntimeError("Queue is shutdown") from None
        return True

    def get(self, timeout: float | None = None) -> Any:  # type: ignore[override]
        try:
            return self.get_blocking(timeout, "get")
        except QueueClosedError:
            raise RuntimeError("Queue is shutdown and empty") from None

    def shutdown(self) -> None:
        """Refuses further puts and wakes every waiting thread."""
        self.close()

    def get_stats(self) -> dict[str, Any]:
        return self.stats()

    def __repr__(self) -> str:
        return f"SyncQueue(size={self.qsize}/{self.maxsize})"


class SPSCQueue(_native.Queue):
    """``SPSCQueue(capacity=4096)``: a single-producer/single-consumer FIFO.

    ``put(item, timeout=None) -> bool`` waits for room (False on timeout or
    after ``shutdown``); ``get(timeout=None)`` returns an item, or None on
    timeout or once shut down and empty.
    """

    def __new__(cls, capacity: int = 4096) -> SPSCQueue:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        return super().__new__(cls, capacity, backpressure="block", use_priority=False, kernel_id="spsc_queue")

    def __init__(self, capacity: int = 4096) -> None:
        pass

    @property
    def capacity(self) -> int:
        return self.maxsize

    @property
    def size(self) -> int:
        return self.qsize

    def put(self, item: Any, timeout: float | None = None) -> bool:  # type: ignore[override]
        try:
            self.put_blocking(item, timeout)
        except (QueueFullError, QueueClosedError):
            return False
        return True

    def get(self, timeout: float | None = None) -> Any:  # type: ignore[override]
        try:
            return self.get_blocking(timeout, "get")
        except (QueueTimeoutError, QueueClosedError):
            return None

    def shutdown(self) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"SPSCQueue(size={self.qsize}/{self.capacity})"


__all__ = ["SyncQueue", "SPSCQueue"]
