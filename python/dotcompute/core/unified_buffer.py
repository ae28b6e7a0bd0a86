"""``UnifiedBuffer``: a numpy host array mirrored in device memory of the Rust
device layer, with lazy, counted synchronisation.

States (PyDotCompute's): ``UNINITIALIZED``, ``HOST_ONLY``, ``DEVICE_ONLY``,
``SYNCHRONIZED``, ``HOST_DIRTY``, ``DEVICE_DIRTY``. The device copy is real
device memory of the Rust layer (the CPU backend's separate memory, or a
CUDA GPU's with ``device="cuda"``), so ``.host`` after device writes copies
back, and ``.device`` after host writes copies over. Fixes over PyDotCompute:

* transitions are guarded: marking one side dirty while the other side has
  unsynchronised writes raises ``BufferStateError`` instead of losing them;
* without a GPU, HOST_DIRTY clears when the data is copied to the CPU
  backend's device memory (PyDotCompute's never cleared, and ``.device``
  aliased the host array);
* ``allocate()`` zero-fills (PyDotCompute left the memory uninitialised).
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from dotcompute import _native
from dotcompute.exceptions import BufferNotAllocatedError, BufferStateError, MetalError


class BufferState(enum.Enum):
    UNINITIALIZED = "UNINITIALIZED"
    HOST_ONLY = "HOST_ONLY"
    DEVICE_ONLY = "DEVICE_ONLY"
    SYNCHRONIZED = "SYNCHRONIZED"
    HOST_DIRTY = "HOST_DIRTY"
    DEVICE_DIRTY = "DEVICE_DIRTY"


class DeviceView:
    """The device side of a buffer: read and write it with ``to_numpy()`` / ``copy_from()``."""

    def __init__(self, buffer: UnifiedBuffer) -> None:
        self._buffer = buffer

    @property
    def native(self) -> Any:
        return self._buffer._device

    def to_numpy(self) -> np.ndarray:
        out = np.empty(self._buffer.shape, self._buffer.dtype)
        self._buffer._device.read_into(out)
        return out

    def copy_from(self, data: Any) -> None:
        """Writes the device copy (as a device kernel would) and marks it dirty."""
        arr = np.ascontiguousarray(data, dtype=self._buffer.dtype).reshape(self._buffer.shape)
        self._buffer.mark_device_dirty()
        self._buffer._device.write(arr)


class UnifiedBuffer:
    """``UnifiedBuffer(shape, dtype=np.float32, *, pinned=False, device="cpu")``."""

    def __init__(self, shape: int | tuple[int, ...], dtype: Any = np.float32, *, pinned: bool = False, device: str = "cpu") -> None:
        self.shape = (shape,) if isinstance(shape, int) else tuple(shape)
        self.dtype = np.dtype(dtype)
        self.pinned = pinned
        self.device_kind = device
        self._host: np.ndarray | None = None
        self._device: Any = None
        self._state = BufferState.UNINITIALIZED

    # ---- properties ----------------------------------------------------------
    @property
    def state(self) -> BufferState:
        return self._state

    @property
    def size(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n

    @property
    def nbytes(self) -> int:
        return self.size * self.dtype.itemsize

    @property
    def is_allocated(self) -> bool:
        return self._state is not BufferState.UNINITIALIZED

    @property
    def transfers(self) -> tuple[int, int]:
        """(host-to-device, device-to-host) copies made."""
        return self._device.transfers if self._device is not None else (0, 0)

    def __len__(self) -> int:
        return self.shape[0] if self.shape else 0

    # ---- allocation ----------------------------------------------------------------
    def allocate(self, *, host: bool = True, device: bool = True) -> UnifiedBuffer:
        if not (host or device):
            raise ValueError("allocate at least one side")
        self._host = np.zeros(self.shape, self.dtype) if host else None
        self._device = _native.DeviceArray(self.nbytes, self.device_kind) if device else None
        if host and device:
            self._state = BufferState.SYNCHRONIZED  # both zero-filled
        elif host:
            self._state = BufferState.HOST_ONLY
        else:
            self._state = BufferState.DEVICE_ONLY
        return self

    def free(self) -> None:
        if self._device is not None:
            self._device.free()
        self._host = None
        self._device = None
        self._state = BufferState.UNINITIALIZED

    def _require(self) -> None:
        if self._state is BufferState.UNINITIALIZED:
            raise BufferNotAllocatedError()

    # ---- synchronisation -----------------------------------------------------------------
    def _to_device(self) -> None:
        if self._device is None:
            self._device = _native.DeviceArray(self.nbytes, self.device_kind)
        assert self._host is not None
        self._device.write(np.ascontiguousarray(self._host))
        self._state = BufferState.SYNCHRONIZED

    def _to_host(self) -> None:
        if self._host is None:
            self._host = np.empty(self.shape, self.dtype)
        self._device.read_into(self._host)
        self._state = BufferState.SYNCHRONIZED

    @property
    def host(self) -> np.ndarray:
        """The host array, after copying device writes back if needed."""
        self._require()
        if self._state in (BufferState.DEVICE_DIRTY, BufferState.DEVICE_ONLY):
            self._to_host()
        assert self._host is not None
        return self._host

    @property
    def device(self) -> DeviceView:
        """The device copy, after copying host writes over if needed."""
        self._require()
        if self._state in (BufferState.HOST_DIRTY, BufferState.HOST_ONLY):
            self._to_device()
        return DeviceView(self)

    @property
    def metal(self) -> Any:
        raise MetalError("Metal not available")

    def mark_host_dirty(self) -> None:
        self._require()
        if self._state is BufferState.DEVICE_DIRTY:
            raise BufferStateError("mark the host dirty", self._state, "the device copy has writes the host lacks: read .host first")
        if self._state is BufferState.DEVICE_ONLY:
            raise BufferStateError("mark the host dirty", self._state, "there is no host copy")
        if self._state is not BufferState.HOST_ONLY:
            self._state = BufferState.HOST_DIRTY

    def mark_device_dirty(self) -> None:
        self._require()
        if self._state is BufferState.HOST_DIRTY:
            raise BufferStateError("mark the device dirty", self._state, "the host copy has writes the device lacks: synchronize first")
        if self._state is BufferState.HOST_ONLY:
            raise BufferStateError("mark the device dirty", self._state, "there is no device copy")
        if self._state is not BufferState.DEVICE_ONLY:
            self._state = BufferState.DEVICE_DIRTY

    mark_metal_dirty = mark_device_dirty

    def synchronize(self) -> None:
        if self._state in (BufferState.HOST_DIRTY, BufferState.HOST_ONLY) and self._host is not None:
            self._to_device()
        elif self._state in (BufferState.DEVICE_DIRTY, BufferState.DEVICE_ONLY) and self._device is not None:
            self._to_host()

    async def ensure_on_device(self) -> None:
        self._require()
        if self._state in (BufferState.HOST_DIRTY, BufferState.HOST_ONLY):
            self._to_device()

    async def ensure_on_host(self) -> None:
        self._require()
        if self._state in (BufferState.DEVICE_DIRTY, BufferState.DEVICE_ONLY):
            self._to_host()

    # ---- data ------------------------------------------------------------------------
    def copy_from(self, data: Any) -> UnifiedBuffer:
        if not self.is_allocated:
            self.allocate()
        host = self.host
        np.copyto(host, np.asarray(data))
        self.mark_host_dirty()
        return self

    def copy_to(self, out: np.ndarray) -> np.ndarray:
        np.copyto(out, self.host)
        return out

    def zeros(self) -> UnifiedBuffer:
        return self.fill(0)

    def fill(self, value: Any) -> UnifiedBuffer:
        if not self.is_allocated:
            self.allocate()
        self.host.fill(value)
        self.mark_host_dirty()
        return self

    def __getitem__(self, key: Any) -> Any:
        return self.host[key]

    def __setitem__(self, key: Any, value: Any) -> None:
        self.host[key] = value
        self.mark_host_dirty()

    def __repr__(self) -> str:
        return f"UnifiedBuffer(shape={self.shape}, dtype={self.dtype}, state={self._state.name}, device={self.device_kind})"


__all__ = ["UnifiedBuffer", "BufferState", "DeviceView"]
