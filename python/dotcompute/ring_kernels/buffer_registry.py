"""``BufferRegistry``: arrays passed by reference between messages of one process.

An ``ArrayMessage`` carries its arrays by reference: ``serialize()`` registers
each array here and writes only a reference; ``deserialize()`` takes the
same array object back (no copy). Each registration holds one reference;
taking the array back through ``deserialize`` releases it, so entries do not
accumulate (PyDotCompute's leaked one per ``serialize``). A reference that is
no longer registered is an error, never a silent array of zeros.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from dotcompute.ring_kernels.message import new_message_id


@dataclass
class BufferHandle:
    buffer_id: UUID
    shape: tuple[int, ...]
    dtype: str
    device: str
    size_bytes: int
    ref_count: int = 1


class BufferRegistry:
    """The process's registry of shared arrays (a singleton: ``get_buffer_registry()``)."""

    _instance: BufferRegistry | None = None
    _instance_lock = threading.Lock()

    def __new__(cls) -> BufferRegistry:
        with cls._instance_lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                inst._lock = threading.Lock()
                inst._arrays: dict[UUID, Any] = {}
                inst._handles: dict[UUID, BufferHandle] = {}
                inst._stats = {"registered": 0, "retrieved": 0, "released": 0, "bytes_registered": 0}
                cls._instance = inst
            return cls._instance

    def register(self, array: Any) -> BufferHandle:
        device = "cpu"
        dev = getattr(array, "device", None)
        if dev is not None and hasattr(dev, "id"):
            device = f"cuda:{dev.id}"
        handle = BufferHandle(
            buffer_id=new_message_id(),
            shape=tuple(getattr(array, "shape", ())),
            dtype=str(getattr(array, "dtype", type(array).__name__)),
            device=device,
            size_bytes=int(getattr(array, "nbytes", 0)),
        )
        with self._lock:
            self._arrays[handle.buffer_id] = array
            self._handles[handle.buffer_id] = handle
            self._stats["registered"] += 1
            self._stats["bytes_registered"] += handle.size_bytes
        return handle

    def get(self, buffer_id: UUID) -> Any:
        with self._lock:
            array = self._arrays.get(buffer_id)
            if array is not None:
                self._stats["retrieved"] += 1
            return array

    def get_handle(self, buffer_id: UUID) -> BufferHandle | None:
        with self._lock:
            return self._handles.get(buffer_id)

    def take(self, buffer_id: UUID) -> Any:
        """The array, dropping one reference (released at zero); None if unknown."""
        with self._lock:
            array = self._arrays.get(buffer_id)
            if array is None:
                return None
            self._stats["retrieved"] += 1
            handle = self._handles[buffer_id]
            handle.ref_count -= 1
            if handle.ref_count <= 0:
                self._release_locked(buffer_id)
            return array

    def _release_locked(self, buffer_id: UUID) -> bool:
        if self._arrays.pop(buffer_id, None) is None:
            return False
        self._handles.pop(buffer_id, None)
        self._stats["released"] += 1
        return True

    def release(self, buffer_id: UUID) -> bool:
        with self._lock:
            return self._release_locked(buffer_id)

    def increment_ref(self, buffer_id: UUID) -> bool:
        with self._lock:
            handle = self._handles.get(buffer_id)
            if handle is None:
                return False
            handle.ref_count += 1
            return True

    def decrement_ref(self, buffer_id: UUID) -> int:
        with self._lock:
            handle = self._handles.get(buffer_id)
            if handle is None:
                return -1
            handle.ref_count -= 1
            if handle.ref_count <= 0:
                self._release_locked(buffer_id)
                return 0
            return handle.ref_count

    def clear(self) -> int:
        with self._lock:
            n = len(self._arrays)
            self._arrays.clear()
            self._handles.clear()
            self._stats["released"] += n
            return n

    def get_stats(self) -> dict[str, int]:
        with self._lock:
            return {**self._stats, "active_buffers": len(self._arrays)}

    def __len__(self) -> int:
        with self._lock:
            return len(self._arrays)

    def __contains__(self, buffer_id: object) -> bool:
        with self._lock:
            return buffer_id in self._arrays


def get_buffer_registry() -> BufferRegistry:
    return BufferRegistry()


def register_buffer(array: Any) -> BufferHandle:
    return BufferRegistry().register(array)


def get_buffer(buffer_id: UUID) -> Any:
    return BufferRegistry().get(buffer_id)


def release_buffer(buffer_id: UUID) -> bool:
    return BufferRegistry().release(buffer_id)


__all__ = [
    "BufferHandle",
    "BufferRegistry",
    "get_buffer_registry",
    "register_buffer",
    "get_buffer",
    "release_buffer",
]
