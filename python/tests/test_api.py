"""Every name of the issue's API, importable where PyDotCompute has it."""

from __future__ import annotations

import importlib

import pytest

SURFACE = {
    "dotcompute": [
        "RingKernelRuntime", "ring_kernel", "message", "RingKernelMessage", "UnifiedBuffer", "BufferState",
        "MemoryPool", "Accelerator", "ComputeOrchestrator", "kernel", "gpu_kernel", "__version__",
    ],
    "dotcompute.ring_kernels": [
        "RingKernelRuntime", "RingKernel", "KernelState", "KernelContext", "RingKernelConfig", "managed_kernel",
        "RingKernelMessage", "message", "ArrayMessage", "array_message", "MessageQueue", "FastMessageQueue",
        "RingBuffer", "PriorityBand", "BufferRegistry", "BufferHandle", "get_buffer_registry", "register_buffer",
        "get_buffer", "release_buffer", "RingKernelTelemetry", "GPUMonitor", "install_uvloop",
        "install_eager_task_factory", "is_uvloop_available", "is_uvloop_installed", "is_eager_tasks_installed",
        "get_loop_info", "create_optimized_loop", "optimize_current_loop", "ThreadedRingKernel",
        "ThreadedKernelContext", "ThreadedKernelConfig", "ThreadedKernelState", "ThreadedKernelPool", "SyncQueue",
        "SPSCQueue", "CythonRingKernel", "CythonKernelContext", "CythonKernelConfig", "CythonKernelState",
        "is_cython_kernel_available", "TelemetryCollector", "BackpressureStrategy",
    ],
    "dotcompute.ring_kernels.runtime": ["RingKernelRuntime"],
    "dotcompute.ring_kernels.lifecycle": ["RingKernel", "KernelContext", "KernelState", "RingKernelConfig", "managed_kernel"],
    "dotcompute.ring_kernels.message": ["RingKernelMessage", "message", "get_message_type", "deserialize_message"],
    "dotcompute.ring_kernels.queue": ["MessageQueue", "BackpressureStrategy"],
    "dotcompute.ring_kernels.fast_queue": ["FastMessageQueue", "RingBuffer", "PriorityBand", "get_priority_band"],
    "dotcompute.ring_kernels.telemetry": ["RingKernelTelemetry", "TelemetryCollector", "GPUMonitor", "GPUInfo"],
    "dotcompute.ring_kernels.threaded_kernel": ["ThreadedRingKernel", "ThreadedKernelPool"],
    "dotcompute.ring_kernels.sync_queue": ["SyncQueue", "SPSCQueue"],
    "dotcompute.ring_kernels.cython_kernel": ["CythonRingKernel"],
    "dotcompute.core": ["Accelerator", "UnifiedBuffer", "BufferState", "MemoryPool", "ComputeOrchestrator"],
    "dotcompute.core.accelerator": ["Accelerator", "DeviceProperties"],
    "dotcompute.core.unified_buffer": ["UnifiedBuffer", "BufferState"],
    "dotcompute.core.memory_pool": ["MemoryPool", "get_memory_pool", "configure_memory_pool"],
    "dotcompute.core.orchestrator": ["ComputeOrchestrator", "KernelLaunchConfig", "KernelExecution"],
    "dotcompute.backends": ["Backend", "BackendType", "CPUBackend", "CUDABackend"],
    "dotcompute.backends.cpu": ["CPUBackend"],
    "dotcompute.backends.cuda": ["CUDABackend"],
    "dotcompute.decorators": ["ring_kernel", "kernel", "gpu_kernel", "validate_message", "validate_config", "RingKernelBuilder"],
    "dotcompute.decorators.ring_kernel": ["ring_kernel", "RingKernelBuilder", "get_ring_kernel_meta", "is_ring_kernel"],
    "dotcompute.decorators.kernel": ["kernel", "gpu_kernel", "cuda_source", "KernelRegistry"],
    "dotcompute.decorators.validators": [
        "validate_queue_size", "validate_grid_size", "validate_block_size", "validate_priority",
        "validate_backpressure_strategy", "validate_message", "validate_config", "RuntimeValidator", "get_validator",
    ],
    "dotcompute.exceptions": [
        "PyDotComputeError", "DotComputeError", "KernelError", "KernelNotFoundError", "KernelStateError",
        "KernelAlreadyExistsError", "KernelFailedError", "KernelTerminatedError", "KernelTerminatingError",
        "MessageError", "MessageSerializationError", "MessageDeserializationError", "QueueError", "QueueFullError",
        "QueueTimeoutError", "BufferError", "BufferNotAllocatedError", "BufferSyncError", "BackendError",
        "BackendNotAvailableError", "CUDAError", "MetalError", "MSLCompilationError", "CompilationError",
        "KernelCompilationError", "ValidationError", "InvalidConfigurationError", "TypeValidationError",
    ],
    "dotcompute.kernels": ["anomaly_detector", "pagerank", "gpu_echo", "gpu_transform", "gpu_running_stats"],
}


@pytest.mark.parametrize("module", sorted(SURFACE))
def test_names_are_importable(module: str) -> None:
    m = importlib.import_module(module)
    missing = [n for n in SURFACE[module] if not hasattr(m, n)]
    assert not missing


def test_exception_messages_match_pydotcompute() -> None:
    from dotcompute import exceptions as e

    assert str(e.KernelStateError("k", "ACTIVE", "launch")) == "Cannot launch kernel 'k' from state 'ACTIVE'"
    assert str(e.QueueTimeoutError("k", 0.5, "receive")) == "Timeout (0.5s) waiting to receive message for kernel 'k'"
    assert str(e.QueueFullError("k", 4)) == "Input queue for kernel 'k' is full (size: 4)"
    assert str(e.KernelAlreadyExistsError("k")) == "Kernel 'k' is already registered"
    assert str(e.InvalidConfigurationError("p", 1, "r")) == "Invalid configuration: p=1 - r"
    assert str(e.BufferNotAllocatedError()) == "Buffer has not been allocated. Call allocate() first."
    assert issubclass(e.KernelFailedError, e.KernelError) and e.PyDotComputeError is e.DotComputeError


def test_stubs_and_marker_ship_with_the_package() -> None:
    import pathlib

    import dotcompute

    root = pathlib.Path(dotcompute.__file__).parent
    assert (root / "py.typed").exists() and (root / "_native.pyi").exists()
