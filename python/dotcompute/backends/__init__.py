"""Backends over the Rust device layer: ``CPUBackend`` always, ``CUDABackend``
(usable where a CUDA driver and GPU exist)."""

from dotcompute.backends.base import Backend, BackendType, KernelExecutionResult
from dotcompute.backends.cpu import CPUBackend
from dotcompute.backends.cuda import CUDABackend

__all__ = ["Backend", "BackendType", "KernelExecutionResult", "CPUBackend", "CUDABackend"]
