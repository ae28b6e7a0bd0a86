"""The backend interface and its result types."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from typing import Any


class BackendType(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"
    METAL = "metal"


@dataclass
class KernelExecutionResult:
    success: bool
    execution_time_ms: float
    error: BaseException | None = None
    result: Any = None


class Backend(abc.ABC):
    @property
    @abc.abstractmethod
    def backend_type(self) -> BackendType: ...

    @property
    @abc.abstractmethod
    def is_available(self) -> bool: ...

    @property
    def device_count(self) -> int:
        return 1 if self.is_available else 0

    @abc.abstractmethod
    def allocate(self, shape: Any, dtype: Any = None) -> Any: ...

    def free(self, array: Any) -> None:
        free = getattr(array, "free", None)
        if callable(free):
            free()

    @abc.abstractmethod
    def copy_to_device(self, host: Any) -> Any: ...

    @abc.abstractmethod
    def copy_to_host(self, device: Any) -> Any: ...

    def synchronize(self) -> None:
        """Copies are synchronous in the Rust device layer."""

    @abc.abstractmethod
    def execute_kernel(self, kernel: Any, grid: Any, block: Any, *args: Any, **kwargs: Any) -> KernelExecutionResult: ...

    def compile_kernel(self, func: Any, signature: Any = None) -> Any:
        return func
