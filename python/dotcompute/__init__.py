"""dotcompute: PyDotCompute's API (actors, messages, queues, telemetry) on the
dotcompute Rust runtime. Moving from PyDotCompute is a change of imports.

The runtime, its queues, the kernel lifecycle, the registry, validation and
telemetry are Rust; actors are asyncio coroutines on your event loop.
"""

import collections.abc as _abc

from dotcompute import _native
from dotcompute._native import __version__
from dotcompute.core import Accelerator, BufferState, ComputeOrchestrator, MemoryPool, UnifiedBuffer
from dotcompute.decorators import gpu_kernel, kernel, ring_kernel
from dotcompute.ring_kernels import RingKernelMessage, RingKernelRuntime, message

# The awaitables of the Rust side follow the coroutine protocol (send, throw,
# close): asyncio.create_task and ensure_future accept them as coroutines.
_abc.Coroutine.register(_native.Awaitable)

__all__ = [
    "Accelerator",
    "UnifiedBuffer",
    "BufferState",
    "MemoryPool",
    "ComputeOrchestrator",
    "RingKernelRuntime",
    "RingKernelMessage",
    "kernel",
    "gpu_kernel",
    "ring_kernel",
    "message",
    "__version__",
]
