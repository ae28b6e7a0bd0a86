"""``@kernel`` and ``@gpu_kernel``: compute kernels for ``ComputeOrchestrator``.

``@kernel`` marks a Python function (typically numpy code) as a named compute
kernel; calling it runs the function (there is no JIT: PyDotCompute used
Numba when installed). ``@gpu_kernel`` marks a kernel meant for a GPU:
dotcompute runs GPU code as CUDA C ring kernels (``dotcompute.kernels``),
not compiled Python, so calling a ``@gpu_kernel`` function raises
``BackendNotAvailableError`` saying so, on every machine, at call time
(PyDotCompute raised at decoration time when Numba was missing).
"""

from __future__ import annotations

import functools
import threading
from typing import Any, Callable

from dotcompute.exceptions import BackendNotAvailableError


class KernelRegistry:
    """Named compute kernels (a singleton)."""

    _instance: KernelRegistry | None = None
    _lock = threading.Lock()

    def __new__(cls) -> KernelRegistry:
        with cls._lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                inst._kernels: dict[str, Any] = {}
                cls._instance = inst
            return cls._instance

    def register(self, name: str, k: Any, overwrite: bool = False) -> None:
        with self._lock:
            if name in self._kernels and not overwrite:
                raise ValueError(f"Kernel '{name}' is already registered")
            self._kernels[name] = k

    def get(self, name: str) -> Any:
        with self._lock:
            return self._kernels.get(name)

    def list(self) -> list[str]:
        with self._lock:
            return sorted(self._kernels)

    def clear(self) -> None:
        with self._lock:
            self._kernels.clear()


def kernel(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    device: str = "auto",
    fastmath: bool = True,
    cache: bool = True,
) -> Any:
    """Marks a compute kernel (see the module docs)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f._kernel_meta = {  # type: ignore[attr-defined]
            "name": name or f.__name__,
            "device": device,
            "fastmath": fastmath,
            "cache": cache,
            "compiled": None,
        }
        return f

    return decorate(func) if func is not None else decorate


def gpu_kernel(
    func: Callable[..., Any] | None = None,
    *,
    name: str | None = None,
    signature: Any = None,
    fastmath: bool = True,
    debug: bool = False,
    cache: bool = True,
) -> Any:
    """Marks a GPU kernel; calling it raises ``BackendNotAvailableError`` (see the module docs)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(f)
        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise BackendNotAvailableError(
                "cuda",
                "Python functions are not compiled for the GPU; GPU code runs as CUDA C ring "
                "kernels (dotcompute.kernels, e.g. gpu_transform(device='cuda'))",
            )

        refuse._kernel_meta = {"name": name or f.__name__, "device": "cuda", "signature": signature}  # type: ignore[attr-defined]
        refuse.__cuda_source__ = getattr(f, "__cuda_source__", None)  # type: ignore[attr-defined]
        return refuse

    return decorate(func) if func is not None else decorate


def cuda_source(src: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Attaches CUDA C source to a function (``func.__cuda_source__``)."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__cuda_source__ = src  # type: ignore[attr-defined]
        return f

    return decorate


__all__ = ["kernel", "gpu_kernel", "cuda_source", "KernelRegistry"]
