"""``MemoryPool``: the Rust device layer's caching allocator (size classes,
reuse, limits, statistics). Its constructor takes arguments (PyDotCompute's
raised ``TypeError`` for any argument), and its statistics are the pool's own."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from dotcompute import _native


@dataclass
class PoolStatistics:
    used_bytes: int = 0
    total_bytes: int = 0
    n_free_blocks: int = 0
    hits: int = 0
    misses: int = 0

    @property
    def free_bytes(self) -> int:
        return self.total_bytes - self.used_bytes

    @property
    def utilization(self) -> float:
        return self.used_bytes / self.total_bytes if self.total_bytes else 0.0

    @property
    def used_mb(self) -> float:
        return self.used_bytes / (1 << 20)

    @property
    def total_mb(self) -> float:
        return self.total_bytes / (1 << 20)


class MemoryPool:
    """``MemoryPool(initial_size_mb=0, max_size_mb=None)``."""

    def __init__(self, initial_size_mb: float = 0, max_size_mb: float | None = None) -> None:
        if initial_size_mb < 0 or (max_size_mb is not None and max_size_mb <= 0):
            raise ValueError("pool sizes must be positive")
        max_bytes = None if max_size_mb is None else int(max_size_mb * (1 << 20))
        self._native = _native.MemoryPool(int(initial_size_mb * (1 << 20)), max_bytes)
        self._enabled = False
        self._lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return self._enabled

    def enable(self) -> None:
        self._enabled = True

    def disable(self) -> None:
        self._enabled = False

    def allocate(self, nbytes: int) -> int:
        """Takes a block of at least ``nbytes``; returns its size."""
        return self._native.allocate(nbytes)

    def release_all(self) -> int:
        return self._native.release_all()

    def get_stats(self) -> PoolStatistics:
        s = self._native.stats()
        return PoolStatistics(
            used_bytes=s["used_bytes"],
            total_bytes=s["total_bytes"],
            n_free_blocks=s["blocks_cached"],
            hits=s["hits"],
            misses=s["misses"],
        )

    def get_pinned_stats(self) -> PoolStatistics:
        return self.get_stats()

    def free_all_blocks(self) -> int:
        return self._native.free_all()

    free_all_free = free_all_blocks

    def stats(self) -> dict[str, Any]:
        return self._native.stats()


_pool: MemoryPool | None = None


def get_memory_pool() -> MemoryPool:
    global _pool
    if _pool is None:
        _pool = MemoryPool()
    return _pool


def configure_memory_pool(initial_size_mb: float = 0, max_size_mb: float | None = None, enable: bool = True) -> MemoryPool:
    global _pool
    _pool = MemoryPool(initial_size_mb, max_size_mb)
    if enable:
        _pool.enable()
    return _pool


__all__ = ["MemoryPool", "PoolStatistics", "get_memory_pool", "configure_memory_pool"]
