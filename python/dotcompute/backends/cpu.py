"""``CPUBackend``: numpy host arrays and the Rust CPU backend's device memory."""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from dotcompute.backends.base import Backend, BackendType, KernelExecutionResult
from dotcompute.core.unified_buffer import UnifiedBuffer


class CPUBackend(Backend):
    device = "cpu"

    @property
    def backend_type(self) -> BackendType:
        return BackendType.CPU

    @property
    def is_available(self) -> bool:
        return True

    def allocate(self, shape: Any, dtype: Any = np.float32) -> UnifiedBuffer:
        """A buffer in the backend's device memory (host copy mirrored)."""
        return UnifiedBuffer(shape, dtype, device=self.device).allocate()

    def allocate_zeros(self, shape: Any, dtype: Any = np.float32) -> UnifiedBuffer:
        return self.allocate(shape, dtype)

    def copy_to_device(self, host: Any) -> UnifiedBuffer:
        arr = np.asarray(host)
        buf = UnifiedBuffer(arr.shape, arr.dtype, device=self.device).copy_from(arr)
        buf.synchronize()
        return buf

    def copy_to_host(self, device: Any) -> np.ndarray:
        if isinstance(device, UnifiedBuffer):
            return device.device.to_numpy()
        return np.array(device, copy=True)

    def execute_kernel(self, kernel: Callable[..., Any], grid: Any, block: Any, *args: Any, **kwargs: Any) -> KernelExecutionResult:
        t = time.perf_counter()
        try:
            result = kernel(*args, **kwargs)
        except Exception as e:
            return KernelExecutionResult(False, (time.perf_counter() - t) * 1000.0, e)
        return KernelExecutionResult(True, (time.perf_counter() - t) * 1000.0, None, result)

    def parallel_for(self, start: int, end: int, func: Callable[[int], Any]) -> None:
        for i in range(start, end):
            func(i)


def vector_add_cpu(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.add(a, b)


def matrix_multiply_cpu(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.matmul(a, b)
