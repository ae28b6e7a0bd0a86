"""TEMPORARY placeholder while the device bindings are written."""
from __future__ import annotations
import threading
from typing import Any, Callable


class KernelRegistry:
    _instance: "KernelRegistry | None" = None
    _lock = threading.Lock()

    def __new__(cls) -> "KernelRegistry":
        with cls._lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                inst._kernels = {}
                cls._instance = inst
            return cls._instance

    def register(self, name: str, k: Any, overwrite: bool = False) -> None:
        if name in self._kernels and not overwrite:
            raise ValueError(f"Kernel '{name}' is already registered")
        self._kernels[name] = k

    def get(self, name: str) -> Any:
        return self._kernels.get(name)

    def list(self) -> list[str]:
        return sorted(self._kernels)

    def clear(self) -> None:
        self._kernels.clear()


def kernel(func: Callable[..., Any] | None = None, **kw: Any) -> Any:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f._kernel_meta = {"name": kw.get("name") or f.__name__}  # type: ignore[attr-defined]
        return f
    return deco(func) if func is not None else deco


def gpu_kernel(func: Callable[..., Any] | None = None, **kw: Any) -> Any:
    return kernel(func, **kw)


def cuda_source(src: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def deco(f: Callable[..., Any]) -> Callable[..., Any]:
        f.__cuda_source__ = src  # type: ignore[attr-defined]
        return f
    return deco
