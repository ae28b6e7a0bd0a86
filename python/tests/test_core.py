"""Core (Accelerator, UnifiedBuffer, MemoryPool, ComputeOrchestrator),
backends, decorators, validators and GPU monitoring."""

from __future__ import annotations

import numpy as np
import pytest

from dotcompute import Accelerator, BufferState, ComputeOrchestrator, MemoryPool, UnifiedBuffer, gpu_kernel, kernel
from dotcompute.backends import BackendType, CPUBackend, CUDABackend
from dotcompute.core import KernelLaunchConfig
from dotcompute.decorators import (
    KernelRegistry,
    RingKernelBuilder,
    RuntimeValidator,
    get_validator,
    validate_backpressure_strategy,
    validate_block_size,
    validate_config,
    validate_grid_size,
    validate_priority,
    validate_queue_size,
)
from dotcompute.exceptions import (
    BackendNotAvailableError,
    BufferNotAllocatedError,
    BufferStateError,
    CUDAError,
    InvalidConfigurationError,
    MetalError,
)
from dotcompute.ring_kernels import GPUMonitor, RingKernelConfig, RingKernelTelemetry


def test_accelerator_lists_the_cpu_first() -> None:
    acc = Accelerator()
    assert acc is Accelerator()
    assert acc.device_count >= 1 and acc.get_device(0).device_type.value == "cpu"
    with pytest.raises(ValueError, match="Invalid device_id"):
        acc.get_device(999)
    assert acc.current_device.device_id == 0


def test_unified_buffer_moves_data_through_real_device_memory() -> None:
    b = UnifiedBuffer((4, 3), np.float64)
    with pytest.raises(BufferNotAllocatedError):
        _ = b.host
    b.allocate()
    assert b.state is BufferState.SYNCHRONIZED and np.all(b.host == 0)  # zero-filled
    b.host[:] = np.arange(12).reshape(4, 3)
    b.mark_host_dirty()
    assert b.state is BufferState.HOST_DIRTY
    dev = b.device  # copies host -> device
    assert b.state is BufferState.SYNCHRONIZED and b.transfers == (1, 0)
    assert np.array_equal(dev.to_numpy(), np.arange(12).reshape(4, 3))
    dev.copy_from(np.ones((4, 3)))  # a device-side write
    assert b.state is BufferState.DEVICE_DIRTY
    assert np.all(b.host == 1) and b.state is BufferState.SYNCHRONIZED  # copied back
    with pytest.raises(MetalError):
        _ = b.metal
    b[0, 0] = 5.0
    with pytest.raises(BufferStateError):
        b.mark_device_dirty()  # would lose the host write; PyDotCompute allowed it
    b.synchronize()
    assert b.state is BufferState.SYNCHRONIZED
    b.free()
    assert b.state is BufferState.UNINITIALIZED
    h = UnifiedBuffer(5).allocate(device=False)
    assert h.state is BufferState.HOST_ONLY
    with pytest.raises(ValueError):
        UnifiedBuffer(3).allocate().device.copy_from(np.zeros(4))


def test_memory_pool_takes_arguments_and_reuses_blocks() -> None:
    pool = MemoryPool(initial_size_mb=1, max_size_mb=64)  # PyDotCompute: TypeError
    size = pool.allocate(1000)
    assert size >= 1000
    pool.release_all()
    pool.allocate(1000)
    s = pool.get_stats()
    assert s.hits >= 1 and s.used_bytes >= 1000
    pool.release_all()
    assert pool.free_all_blocks() >= 0


async def test_orchestrator_keeps_results_and_bounded_history() -> None:
    @kernel
    def add(a, b):
        return a + b

    async with ComputeOrchestrator(history_size=3) as orch:
        orch.register_kernel("add", add)
        ex = await orch.launch_kernel("add", KernelLaunchConfig(grid_size=2), 2, 3)
        assert ex.success and ex.result == 5 and ex.duration_ms >= 0
        for _ in range(5):
            await orch.launch_kernel("add", None, 1, 1)
        assert len(orch.get_execution_history()) == 3
        with pytest.raises(ValueError, match="not registered"):
            await orch.launch_kernel("nope")


def test_backends() -> None:
    cpu = CPUBackend()
    assert cpu.backend_type is BackendType.CPU and cpu.is_available
    d = cpu.copy_to_device(np.arange(5.0))
    assert np.array_equal(cpu.copy_to_host(d), np.arange(5.0))
    r = cpu.execute_kernel(lambda: 1 / 0, (1,), (1,))
    assert not r.success and isinstance(r.error, ZeroDivisionError)
    cuda = CUDABackend()
    if not cuda.is_available:
        with pytest.raises(CUDAError):
            cuda.allocate((4,))
        assert not cuda.execute_kernel(lambda: None, 1, 1).success


def test_decorators_and_validators() -> None:
    @gpu_kernel
    def on_gpu(x):
        return x

    with pytest.raises(BackendNotAvailableError):
        on_gpu(1)
    reg = KernelRegistry()
    reg.register("k-test", 1, overwrite=True)
    with pytest.raises(ValueError):
        reg.register("k-test", 2)
    with pytest.raises(ValueError, match="Handler function is required"):
        RingKernelBuilder("b").build()
    built = RingKernelBuilder("builder-k").with_queue_size(16).with_handler(lambda ctx: None).build(auto_register=False)
    assert built._ring_kernel_meta["config"].input_queue_size == 16
    for bad in (True, 0, 2**30, "8"):
        with pytest.raises(InvalidConfigurationError):
            validate_queue_size(bad)  # PyDotCompute accepted True
    assert validate_grid_size(4) == (4,)
    with pytest.raises(InvalidConfigurationError):
        validate_grid_size([1])
    with pytest.raises(InvalidConfigurationError):
        validate_block_size((32, 32, 2))
    with pytest.raises(InvalidConfigurationError):
        validate_priority(256)
    assert validate_backpressure_strategy("DROP-OLDEST") == "drop_oldest"

    @validate_config(RingKernelConfig)  # PyDotCompute crashed here (string annotations)
    def configure(**kw):
        return kw

    assert configure(input_queue_size=8) == {"input_queue_size": 8}
    with pytest.raises(InvalidConfigurationError):
        configure(input_queue_size="8")
    v = RuntimeValidator(strict=False)
    assert v.validate_kernel_config({"queue_size": 0, "other": 1}) == {}
    assert len(v.warnings) == 1
    assert get_validator() is get_validator()


def test_gpu_monitor_is_clean_without_nvml() -> None:
    m = GPUMonitor()
    if not m.is_available:
        assert m.device_count == 0 and m.unavailable_reason
        info = m.get_gpu_info(0)
        assert info.name == "N/A" and info.memory_utilization == 0.0
        assert m.get_memory_info() == {"used": 0, "free": 0, "total": 0}
    else:
        assert m.device_count >= 1


def test_telemetry_object_methods() -> None:
    t = RingKernelTelemetry(kernel_id="x")
    assert t.min_latency_ns is None and t.throughput == 0.0
    for ns in (0, 500, 100):
        t.record_message(ns)
    assert t.min_latency_ns == 0  # PyDotCompute reported 100 (0 was its "unset")
    assert t.max_latency_ns == 500 and t.avg_latency_ns == 200
    t.record_drop()
    t.record_error("e")
    assert t.to_dict()["error_count"] == 1
    t.reset()
    assert t.kernel_id == "x" and t.messages_processed == 0
