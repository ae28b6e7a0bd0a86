"""Ring kernels: the runtime, the lifecycle, messages, queues, telemetry and
the threaded tiers, laid out as in PyDotCompute."""

from dotcompute.ring_kernels._loop import (
    create_optimized_loop,
    get_loop_info,
    install_eager_task_factory,
    install_uvloop,
    is_eager_tasks_installed,
    is_uvloop_available,
    is_uvloop_installed,
    optimize_current_loop,
)
from dotcompute.ring_kernels.array_message import ArrayMessage, array_message
from dotcompute.ring_kernels.buffer_registry import (
    BufferHandle,
    BufferRegistry,
    get_buffer,
    get_buffer_registry,
    register_buffer,
    release_buffer,
)
from dotcompute.ring_kernels.cython_kernel import (
    CythonKernelConfig,
    CythonKernelContext,
    CythonKernelState,
    CythonRingKernel,
    is_cython_kernel_available,
)
from dotcompute.ring_kernels.fast_queue import FastMessageQueue, PriorityBand, RingBuffer, get_priority_band
from dotcompute.ring_kernels.fast_spsc import FastSPSCQueue
from dotcompute.ring_kernels.lifecycle import KernelContext, KernelState, RingKernel, RingKernelConfig, managed_kernel
from dotcompute.ring_kernels.message import (
    RingKernelMessage,
    deserialize_message,
    get_message_type,
    message,
    new_message_id,
)
from dotcompute.ring_kernels.queue import BackpressureStrategy, MessageQueue
from dotcompute.ring_kernels.runtime import LaunchedKernel, RingKernelRuntime
from dotcompute.ring_kernels.sync_queue import SPSCQueue, SyncQueue
from dotcompute.ring_kernels.telemetry import GPUInfo, GPUMonitor, RingKernelTelemetry, TelemetryCollector
from dotcompute.ring_kernels.threaded_kernel import (
    ThreadedKernelConfig,
    ThreadedKernelContext,
    ThreadedKernelPool,
    ThreadedKernelState,
    ThreadedRingKernel,
)

__all__ = [
    "RingKernelRuntime",
    "LaunchedKernel",
    "RingKernel",
    "KernelState",
    "KernelContext",
    "RingKernelConfig",
    "managed_kernel",
    "RingKernelMessage",
    "message",
    "new_message_id",
    "get_message_type",
    "deserialize_message",
    "ArrayMessage",
    "array_message",
    "MessageQueue",
    "BackpressureStrategy",
    "FastMessageQueue",
    "RingBuffer",
    "PriorityBand",
    "get_priority_band",
    "SyncQueue",
    "SPSCQueue",
    "FastSPSCQueue",
    "BufferRegistry",
    "BufferHandle",
    "get_buffer_registry",
    "register_buffer",
    "get_buffer",
    "release_buffer",
    "RingKernelTelemetry",
    "TelemetryCollector",
    "GPUMonitor",
    "GPUInfo",
    "install_uvloop",
    "install_eager_task_factory",
    "is_uvloop_available",
    "is_uvloop_installed",
    "is_eager_tasks_installed",
    "get_loop_info",
    "create_optimized_loop",
    "optimize_current_loop",
    "ThreadedRingKernel",
    "ThreadedKernelContext",
    "ThreadedKernelConfig",
    "ThreadedKernelState",
    "ThreadedKernelPool",
    "CythonRingKernel",
    "CythonKernelContext",
    "CythonKernelConfig",
    "CythonKernelState",
    "is_cython_kernel_available",
]
