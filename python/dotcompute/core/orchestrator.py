"""``ComputeOrchestrator``: named kernels, timed launches and a bounded history.

A kernel is a Python callable (``@kernel``) or a coroutine function. Fixes
over PyDotCompute: the kernel's return value is kept
(``KernelExecution.result``), and the history is bounded (``history_size``).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import inspect
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

from dotcompute.core.accelerator import Accelerator
from dotcompute.core.memory_pool import get_memory_pool


@dataclass
class KernelLaunchConfig:
    grid_size: int | tuple[int, ...] = (1,)
    block_size: int | tuple[int, ...] = (256,)
    shared_memory_bytes: int = 0
    stream: Any = None

    def __post_init__(self) -> None:
        if isinstance(self.grid_size, int):
            self.grid_size = (self.grid_size,)
        if isinstance(self.block_size, int):
            self.block_size = (self.block_size,)


@dataclass
class KernelExecution:
    execution_id: str
    kernel_name: str
    config: KernelLaunchConfig
    start_time: float
    end_time: float = 0.0
    success: bool = False
    error: BaseException | None = None
    result: Any = field(default=None, repr=False)

    @property
    def duration_ms(self) -> float:
        return (self.end_time - self.start_time) * 1000.0


class ComputeOrchestrator:
    def __init__(self, history_size: int = 10_000) -> None:
        self._kernels: dict[str, Callable[..., Any]] = {}
        self._history: collections.deque[KernelExecution] = collections.deque(maxlen=history_size)
        self._initialized = False
        self.accelerator: Accelerator | None = None

    async def initialize(self) -> None:
        if not self._initialized:
            self.accelerator = Accelerator()
            get_memory_pool().enable()
            self._initialized = True

    async def shutdown(self) -> None:
        if self._initialized:
            get_memory_pool().free_all_blocks()
            self._initialized = False

    async def __aenter__(self) -> ComputeOrchestrator:
        await self.initialize()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    def register_kernel(self, name: str, func: Callable[..., Any]) -> None:
        self._kernels[name] = func

    def get_kernel(self, name: str) -> Callable[..., Any] | None:
        return self._kernels.get(name)

    async def launch_kernel(
        self, kernel: str | Callable[..., Any], config: KernelLaunchConfig | None = None, *args: Any, **kwargs: Any
    ) -> KernelExecution:
        if isinstance(kernel, str):
            func = self._kernels.get(kernel)
            if func is None:
                raise ValueError(f"Kernel '{kernel}' not registered")
            name = kernel
        else:
            func = kernel
            name = getattr(kernel, "__name__", repr(kernel))
        config = config or KernelLaunchConfig()
        ex = KernelExecution(uuid.uuid4().hex, name, config, time.perf_counter())
        self._history.append(ex)
        try:
            result = func(*args, **kwargs)
            if inspect.isawaitable(result):
                result = await result
            ex.result = result
            ex.success = True
        except BaseException as e:
            ex.error = e
            raise
        finally:
            ex.end_time = time.perf_counter()
        return ex

    def get_execution_history(self, limit: int | None = None, kernel_name: str | None = None) -> list[KernelExecution]:
        items = [e for e in self._history if kernel_name is None or e.kernel_name == kernel_name]
        return items[-limit:] if limit else items

    def clear_execution_history(self) -> None:
        self._history.clear()

    def create_stream(self) -> None:
        """Copies in this layer are synchronous: there are no streams (None)."""
        return None

    @contextlib.asynccontextmanager
    async def stream_context(self) -> AsyncIterator[None]:
        yield None

    def synchronize(self) -> None:
        """Nothing is pending (copies are synchronous)."""

    def __repr__(self) -> str:
        return f"ComputeOrchestrator(kernels={sorted(self._kernels)}, history={len(self._history)})"


__all__ = ["ComputeOrchestrator", "KernelLaunchConfig", "KernelExecution"]
