"""dotcompute: PyDotCompute's API (actors, messages, queues, telemetry) on the
dotcompute Rust runtime. Moving from PyDotCompute is a change of imports.

The runtime, its queues, the kernel lifecycle, the registry, validation and
telemetry are Rust; actors are asyncio coroutines on your event loop.
"""

from dotcompute._native import __version__
from dotcompute.core import Accelerator, BufferState, ComputeOrchestrator, MemoryPool, UnifiedBuffer
from dotcompute.decorators import gpu_kernel, kernel, ring_kernel
from dotcompute.ring_kernels import RingKernelMessage, RingKernelRuntime, message

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
