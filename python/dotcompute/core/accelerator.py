"""``Accelerator``: the devices the Rust device layer discovers (the CPU always;
CUDA GPUs when a driver is present)."""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import Any

from dotcompute import _native


class DeviceType(enum.Enum):
    CPU = "cpu"
    CUDA = "cuda"
    METAL = "metal"


@dataclass(frozen=True)
class DeviceProperties:
    device_id: int
    device_type: DeviceType
    name: str
    compute_capability: tuple[int, int] | None
    total_memory: int
    multiprocessor_count: int
    max_threads_per_block: int
    max_block_dims: tuple[int, int, int]
    max_grid_dims: tuple[int, int, int]
    warp_size: int
    is_available: bool = True

    @property
    def compute_capability_str(self) -> str:
        cc = self.compute_capability
        return "N/A" if cc is None else f"{cc[0]}.{cc[1]}"

    @property
    def total_memory_gb(self) -> float:
        return self.total_memory / (1 << 30)


def _props(d: dict[str, Any]) -> DeviceProperties:
    kind = str(d.get("kind", "Cpu")).lower()
    cc = d.get("compute_capability")
    return DeviceProperties(
        device_id=int(d["id"]),
        device_type=DeviceType.CUDA if kind == "cuda" else DeviceType.CPU,
        name=d.get("name", ""),
        compute_capability=tuple(cc) if cc else None,  # type: ignore[arg-type]
        total_memory=int(d.get("total_memory", 0)),
        multiprocessor_count=int(d.get("multiprocessor_count", 0)),
        max_threads_per_block=int(d.get("max_threads_per_block", 0)),
        max_block_dims=tuple(d.get("max_block_dims", (0, 0, 0))),  # type: ignore[arg-type]
        max_grid_dims=tuple(d.get("max_grid_dims", (0, 0, 0))),  # type: ignore[arg-type]
        warp_size=int(d.get("warp_size", 0)),
    )


class Accelerator:
    """The machine's devices (a process-wide singleton). Unlike PyDotCompute's,
    the CPU is always listed (device 0), GPUs after it."""

    _instance: Accelerator | None = None
    _lock = threading.Lock()

    def __new__(cls) -> Accelerator:
        with cls._lock:
            if cls._instance is None:
                inst = super().__new__(cls)
                devices, status = _native.discover_devices()
                inst._devices = [_props(d) for d in devices]
                inst._cuda_status = status
                inst._current = 0
                cls._instance = inst
            return cls._instance

    @property
    def cuda_available(self) -> bool:
        return self._cuda_status.get("status") == "available"

    @property
    def cuda_status(self) -> dict[str, Any]:
        return dict(self._cuda_status)

    @property
    def metal_available(self) -> bool:
        return False

    @property
    def device_count(self) -> int:
        return len(self._devices)

    @property
    def devices(self) -> list[DeviceProperties]:
        return list(self._devices)

    @property
    def current_device(self) -> DeviceProperties:
        return self._devices[self._current]

    def _check(self, device_id: int) -> None:
        if not 0 <= device_id < len(self._devices):
            raise ValueError(f"Invalid device_id: {device_id}. Valid range: 0-{len(self._devices) - 1}")

    def get_device(self, device_id: int) -> DeviceProperties:
        self._check(device_id)
        return self._devices[device_id]

    def set_device(self, device_id: int) -> None:
        self._check(device_id)
        self._current = device_id

    def synchronize(self) -> None:
        """Device copies are synchronous in this layer: nothing is pending."""

    def get_memory_info(self) -> dict[str, int]:
        d = self.current_device
        return {"free": d.total_memory, "total": d.total_memory, "used": 0}

    def __repr__(self) -> str:
        return f"Accelerator(devices={[d.name for d in self._devices]}, cuda={self.cuda_available})"


__all__ = ["Accelerator", "DeviceProperties", "DeviceType"]
