"""``FastMessageQueue`` (four priority bands) and ``RingBuffer`` (FIFO).

Both are the runtime's Rust queue. Compared with PyDotCompute:

* ``FastMessageQueue`` keeps its behaviour where it was right (four bands,
  FIFO within a band, ``put`` blocks when full, ``timeout=0`` or an expired
  timeout raises ``QueueFullError``, ``get`` raises ``QueueTimeoutError``),
  and fixes the rest: priorities outside 0-255 are refused, ``serialize=True``
  gives back messages (PyDotCompute's ``get`` returned the raw bytes), and
  ``put_batch`` queues in order and returns the count queued.
* ``get_priority_band`` refuses out-of-range priorities instead of mapping
  300 to SYSTEM and -5 to LOW.
"""

from __future__ import annotations

import enum
from typing import Any

from dotcompute import _native


class PriorityBand(enum.IntEnum):
    """The four priority bands, most urgent first."""

    SYSTEM = 0
    HIGH = 1
    NORMAL = 2
    LOW = 3


def get_priority_band(priority: int) -> PriorityBand:
    """The band of a priority: >=224 SYSTEM, >=160 HIGH, >=64 NORMAL, else LOW."""
    if isinstance(priority, bool) or not isinstance(priority, int) or not 0 <= priority <= 255:
        raise ValueError(f"Priority must be 0-255, got {priority!r}")
    if priority >= 224:
        return PriorityBand.SYSTEM
    if priority >= 160:
        return PriorityBand.HIGH
    if priority >= 64:
        return PriorityBand.NORMAL
    return PriorityBand.LOW


class FastMessageQueue(_native.Queue):
    """``FastMessageQueue(maxsize=4096, *, kernel_id="", serialize=False)``: a
    blocking queue with four priority bands.

    With ``serialize=True`` each message is stored in its wire format (so
    later changes to the object do not reach the queue) and decoded on ``get``.
    """

    def __new__(cls, maxsize: int = 4096, *, kernel_id: str = "", serialize: bool = False) -> FastMessageQueue:
        return super().__new__(cls, maxsize, backpressure="block", use_priority=True, kernel_id=kernel_id, timeout_is_full=True)

    def __init__(self, maxsize: int = 4096, *, kernel_id: str = "", serialize: bool = False) -> None:
        self.serialize = serialize
        self.kernel_id = kernel_id
        if serialize:
            # Only the serializing queue pays for the Python wrappers.
            self.put = self._put_packed  # type: ignore[method-assign]
            self.get = self._get_packed  # type: ignore[method-assign]
            self.put_nowait = self._put_nowait_packed  # type: ignore[method-assign]
            self.get_nowait = self._get_nowait_packed  # type: ignore[method-assign]
            self.put_batch = self._put_batch_packed  # type: ignore[method-assign]
            self.get_batch = self._get_batch_packed  # type: ignore[method-assign]

    @staticmethod
    def _pack(message: Any) -> _Packed:
        return _Packed(message.serialize(), message.priority)

    @staticmethod
    def _unpack(item: Any) -> Any:
        from dotcompute.ring_kernels.message import deserialize_message

        return deserialize_message(item.data)

    async def _put_packed(self, message: Any, timeout: float | None = None) -> None:
        await _native.Queue.put(self, self._pack(message), timeout)

    async def _get_packed(self, timeout: float | None = None) -> Any:
        return self._unpack(await _native.Queue.get(self, timeout))

    def _put_nowait_packed(self, message: Any) -> bool:
        return _native.Queue.put_nowait(self, self._pack(message))

    def _get_nowait_packed(self) -> Any:
        item = _native.Queue.get_nowait(self)
        return None if item is None else self._unpack(item)

    def _put_batch_packed(self, messages: list[Any]) -> int:
        return _native.Queue.put_batch(self, [self._pack(m) for m in messages])

    def _get_batch_packed(self, max_count: int) -> list[Any]:
        return [self._unpack(i) for i in _native.Queue.get_batch(self, max_count)]

    def get_stats(self) -> dict[str, Any]:
        return self.stats()

    def __repr__(self) -> str:
        return f"FastMessageQueue(size={self.qsize}/{self.maxsize}, kernel_id={self.kernel_id!r})"


class _Packed:
    """A serialized message and its priority (what ``serialize=True`` stores)."""

    __slots__ = ("data", "priority")

    def __init__(self, data: bytes, priority: int) -> None:
        self.data = data
        self.priority = priority


class RingBuffer(_native.Queue):
    """``RingBuffer(capacity=4096)``: a FIFO queue; the capacity is rounded up
    to a power of two and every slot is usable. ``put``/``get`` return
    ``False``/``None`` on timeout instead of raising."""

    def __new__(cls, capacity: int = 4096) -> RingBuffer:
        if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        rounded = 1 << (capacity - 1).bit_length()
        return super().__new__(cls, rounded, backpressure="block", use_priority=False, timeout_is_full=True)

    def __init__(self, capacity: int = 4096) -> None:
        pass

    @property
    def capacity(self) -> int:
        return self.maxsize

    @property
    def size(self) -> int:
        return self.qsize

    async def put(self, item: Any, *, timeout: float | None = None) -> bool:  # type: ignore[override]
        from dotcompute.exceptions import QueueFullError

        try:
            await super().put(item, timeout)
        except QueueFullError:
            return False
        return True

    async def get(self, *, timeout: float | None = None) -> Any:  # type: ignore[override]
        from dotcompute.exceptions import QueueTimeoutError

        try:
            return await super().get(timeout)
        except QueueTimeoutError:
            return None

    def __repr__(self) -> str:
        return f"RingBuffer(size={self.qsize}/{self.capacity})"


__all__ = ["PriorityBand", "get_priority_band", "FastMessageQueue", "RingBuffer"]
