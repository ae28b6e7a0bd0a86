"""Tier 3: ``CythonRingKernel``, a kernel on its own thread polling wait-free rings.

PyDotCompute's tier 3 was a Python thread spinning on a Cython SPSC queue
while holding the GIL (about 8 ms per round trip on two cores), whose
``ctx.send()`` wrote into its own input queue. Here the name is kept for
compatibility and the kernel is the Rust runtime's ``Spin`` mode: its thread
polls the runtime's wait-free SPSC rings (spin, then yield, then park) with
the GIL released, and runs Python only to handle a message. Rings are FIFO
(no priority bands) and support ``block`` and ``reject``.

``ctx.send`` sends to the kernel's output; a full ring makes it wait (never
lose or raise ``SystemError``); ``receive()`` on the host blocks until a
reply comes (``receive(timeout=0)`` / ``receive_nowait()`` never block).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from dotcompute import _native
from dotcompute.ring_kernels.threaded_kernel import ThreadedKernelState, ThreadedRingKernel

CythonKernelState = ThreadedKernelState
CythonKernelContext = _native.BlockingContext


@dataclass
class CythonKernelConfig:
    """``spin_wait_ns`` is accepted for compatibility (the runtime's back-off is adaptive)."""

    kernel_id: str
    input_queue_size: int = 4096
    output_queue_size: int = 4096
    spin_wait_ns: int = 100
    thread_name: str | None = None
    daemon: bool = True
    use_spsc: bool = True

    def __post_init__(self) -> None:
        for name in ("input_queue_size", "output_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


class CythonRingKernel(ThreadedRingKernel):
    """A spin-tier kernel (see the module docs)."""

    _spin = True

    def __init__(
        self, kernel_id: str, kernel_func: Callable[[Any], Any], config: CythonKernelConfig | None = None
    ) -> None:
        super().__init__(kernel_id, kernel_func, config or CythonKernelConfig(kernel_id=kernel_id))  # type: ignore[arg-type]

    @property
    def using_cython(self) -> bool:
        """False: the rings are the runtime's Rust rings (there is no Cython build)."""
        return False

    @property
    def using_rust_rings(self) -> bool:
        return True


def is_cython_kernel_available() -> bool:
    """Whether tier 3 can run: always (it needs no build step)."""
    return True


__all__ = [
    "CythonRingKernel",
    "CythonKernelContext",
    "CythonKernelConfig",
    "CythonKernelState",
    "is_cython_kernel_available",
]
