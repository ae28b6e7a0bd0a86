"""``CUDABackend``: device memory on an NVIDIA GPU through the Rust CUDA backend
(cudarc). Without a driver every operation raises ``CUDAError`` and
``execute_kernel`` reports ``success=False``; nothing fails at import."""

from __future__ import annotations

from typing import Any

from dotcompute.backends.base import BackendType, KernelExecutionResult
from dotcompute.backends.cpu import CPUBackend
from dotcompute.core.accelerator import Accelerator
from dotcompute.exceptions import CUDAError


class CUDABackend(CPUBackend):
    device = "cuda"

    def __init__(self, device_id: int = 0) -> None:
        self.device_id = device_id

    @property
    def backend_type(self) -> BackendType:
        return BackendType.CUDA

    @property
    def is_available(self) -> bool:
        return Accelerator().cuda_available

    @property
    def device_count(self) -> int:
        return int(Accelerator().cuda_status.get("device_count", 0)) if self.is_available else 0

    def _check(self) -> None:
        if not self.is_available:
            raise CUDAError(f"CUDA not available: {Accelerator().cuda_status.get('reason', '')}")

    def allocate(self, shape: Any, dtype: Any = None) -> Any:
        self._check()
        return super().allocate(shape, dtype) if dtype is not None else super().allocate(shape)

    def copy_to_device(self, host: Any) -> Any:
        self._check()
        return super().copy_to_device(host)

    def execute_kernel(self, kernel: Any, grid: Any, block: Any, *args: Any, **kwargs: Any) -> KernelExecutionResult:
        if not self.is_available:
            return KernelExecutionResult(False, 0.0, CUDAError("CUDA not available"))
        return super().execute_kernel(kernel, grid, block, *args, **kwargs)
