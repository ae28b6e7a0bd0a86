"""Devices and memory over the Rust device layer: ``Accelerator``,
``UnifiedBuffer`` (numpy host side), ``MemoryPool``, ``ComputeOrchestrator``."""

from dotcompute.core.accelerator import Accelerator, DeviceProperties, DeviceType
from dotcompute.core.memory_pool import MemoryPool, PoolStatistics, configure_memory_pool, get_memory_pool
from dotcompute.core.orchestrator import ComputeOrchestrator, KernelExecution, KernelLaunchConfig
from dotcompute.core.unified_buffer import BufferState, UnifiedBuffer

__all__ = [
    "Accelerator",
    "DeviceProperties",
    "DeviceType",
    "MemoryPool",
    "PoolStatistics",
    "get_memory_pool",
    "configure_memory_pool",
    "ComputeOrchestrator",
    "KernelExecution",
    "KernelLaunchConfig",
    "UnifiedBuffer",
    "BufferState",
]
