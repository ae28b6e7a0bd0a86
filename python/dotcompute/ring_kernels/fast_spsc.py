"""``FastSPSCQueue``: PyDotCompute's Cython SPSC queue API on the runtime's queue.

``put(item) -> bool`` never blocks and returns ``False`` when full
(PyDotCompute's raised ``SystemError``); ``put_wait`` / ``get_wait`` wait
with the GIL released (PyDotCompute spun while holding it); after
``shutdown()`` ``put`` returns ``False`` too (PyDotCompute still accepted).
The capacity is rounded up to a power of two, with ``capacity - 1`` usable
slots, as in PyDotCompute.
"""

from __future__ import annotations

from typing import Any

from dotcompute import _native
from dotcompute.exceptions import QueueClosedError, QueueFullError, QueueTimeoutError


class FastSPSCQueue(_native.Queue):
    def __new__(cls, capacity: int = 4096) -> FastSPSCQueue:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 0:
            raise ValueError(f"capacity must be a non-negative int, got {capacity!r}")
        rounded = _round(capacity)
        return super().__new__(cls, max(rounded - 1, 1), backpressure="block", use_priority=False, kernel_id="fast_spsc")

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = _round(capacity)

    @property
    def capacity(self) -> int:
        return self._capacity

    @property
    def size(self) -> int:
        return self.qsize

    def put(self, item: Any) -> bool:  # type: ignore[override]
        """Queues ``item`` if there is room; never blocks."""
        return self.put_nowait(item)

    def get(self) -> Any:  # type: ignore[override]
        """An item if one is queued, else None; never blocks."""
        return self.get_nowait()

    def put_wait(self, item: Any, timeout_sec: float = 1.0) -> bool:
        """Waits (GIL released) up to ``timeout_sec`` for room; False on timeout or shutdown."""
        try:
            self.put_blocking(item, timeout_sec)
        except (QueueFullError, QueueClosedError):
            return False
        return True

    def get_wait(self, timeout_sec: float = 1.0) -> Any:
        """Waits (GIL released) up to ``timeout_sec`` for an item; None on timeout or shutdown."""
        try:
            return self.get_blocking(timeout_sec)
        except (QueueTimeoutError, QueueClosedError):
            return None

    def shutdown(self) -> None:
        self.close()


def _round(capacity: int) -> int:
    return 1 if capacity <= 1 else 1 << (capacity - 1).bit_length()


def is_cython_available() -> bool:
    """False: there is no Cython build (the queue is the runtime's Rust queue)."""
    return False


__all__ = ["FastSPSCQueue", "is_cython_available"]
