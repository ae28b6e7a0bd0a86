"""Kernel lifecycle: ``KernelState``, ``RingKernelConfig``, ``KernelContext``,
``RingKernel`` and ``managed_kernel``.

The lifecycle is the Rust runtime's state machine::

    CREATED -launch-> LAUNCHED -activate-> ACTIVE <-deactivate/reactivate-> DEACTIVATED
    LAUNCHED / ACTIVE / DEACTIVATED -terminate-> TERMINATING -> TERMINATED
    ACTIVE / DEACTIVATED -actor raised, no restart left-> FAILED

Differences from PyDotCompute, each a fix:

* deactivation is enforced by the runtime: nothing is delivered to a
  deactivated kernel (messages stay queued), whether or not the actor polls
  ``ctx.is_active``;
* ``terminate`` wakes an actor blocked in ``ctx.receive()`` at once (it
  raises ``KernelTerminatingError``), so shutdown does not wait for receive
  timeouts; queued input is counted as discarded (``drain=True`` delivers it
  first);
* an actor that raises moves its kernel to ``FAILED`` and the error reaches
  the host's next call, instead of leaving a dead task behind an ACTIVE kernel;
* ``backpressure_strategy`` is validated and applied to the input queue.
"""

from __future__ import annotations

import contextlib
import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from dotcompute import _native
from dotcompute.decorators.validators import (
    validate_backpressure_strategy,
    validate_block_size,
    validate_grid_size,
    validate_queue_size,
)
from dotcompute.exceptions import KernelStateError

if TYPE_CHECKING:
    from dotcompute.ring_kernels.runtime import RingKernelRuntime

#: What an actor receives: ``receive(timeout=None)``, ``send(msg, timeout=None)``,
#: ``send_to(kernel_id, msg)``, ``wait_active()``, and the properties
#: ``kernel_id``, ``should_terminate``, ``is_active``, ``state``.
KernelContext = _native.KernelContext


class KernelState(enum.Enum):
    """Where a kernel is in its life (PyDotCompute's states, plus ``FAILED``)."""

    CREATED = "CREATED"
    LAUNCHED = "LAUNCHED"
    ACTIVE = "ACTIVE"
    DEACTIVATED = "DEACTIVATED"
    TERMINATING = "TERMINATING"
    TERMINATED = "TERMINATED"
    FAILED = "FAILED"


@dataclass
class RingKernelConfig:
    """Configuration of one ring kernel, validated when built.

    ``grid_size`` and ``block_size`` are validated and kept for GPU kernels;
    a Python actor runs on the event loop and does not use them.
    ``use_fast_queue`` is accepted for compatibility: every kernel's queues
    are the Rust queue (four priority bands, O(1), the configured strategy).
    """

    kernel_id: str
    grid_size: int | tuple[int, ...] = 1
    block_size: int | tuple[int, ...] = 256
    input_queue_size: int = 4096
    output_queue_size: int = 4096
    backpressure_strategy: Any = "block"
    use_fast_queue: bool = True
    #: What the actor's ``ctx.send`` does when the output queue is full.
    output_backpressure: Any = "block"
    #: Longest wait of a ``block`` send into the input queue (None: no limit).
    send_timeout: float | None = None
    #: Restart a failed actor up to this many times within ``restart_window`` seconds (0: never).
    max_restarts: int = 0
    restart_window: float = 60.0
    #: Measure the queue wait and handler time of one message in this many
    #: (1: every message; 0: none). Counters are exact whatever this is.
    latency_sample_every: int = 8

    def __post_init__(self) -> None:
        for name in ("grid_size", "block_size", "input_queue_size", "output_queue_size"):
            value = getattr(self, name)
            if isinstance(value, int) and not isinstance(value, bool) and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        validate_grid_size(self.grid_size)
        validate_block_size(self.block_size)
        validate_queue_size(self.input_queue_size, "input_queue_size")
        validate_queue_size(self.output_queue_size, "output_queue_size")
        self.backpressure_strategy = validate_backpressure_strategy(self.backpressure_strategy)
        self.output_backpressure = validate_backpressure_strategy(self.output_backpressure)
        if self.send_timeout is not None and not self.send_timeout > 0:
            raise ValueError(f"send_timeout must be positive seconds or None, got {self.send_timeout}")
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, got {self.max_restarts}")
        if self.max_restarts and not self.restart_window > 0:
            raise ValueError(f"restart_window must be positive, got {self.restart_window}")
        n = self.latency_sample_every
        if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n < 2**32:
            raise ValueError(f"latency_sample_every must be an int in 0..2**32, got {n!r}")


class RingKernel:
    """One ring kernel on its own (a private runtime holds it).

    ``RingKernel(kernel_id, kernel_func, config=None, input_type=None,
    output_type=None)``; then ``await launch()``, ``await activate()``,
    ``await send(msg)`` / ``await receive()``, ``await terminate()``.
    """

    def __init__(
        self,
        kernel_id: str,
        kernel_func: Callable[..., Any],
        *,
        config: RingKernelConfig | None = None,
        input_type: type | None = None,
        output_type: type | None = None,
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_func = kernel_func
        self.config = config or RingKernelConfig(kernel_id=kernel_id)
        self.input_type = input_type
        self.output_type = output_type
        self._runtime: RingKernelRuntime | None = None
        self._final: KernelState | None = None

    @property
    def state(self) -> KernelState:
        if self._final is not None:
            return self._final
        if self._runtime is None:
            return KernelState.CREATED
        return self._runtime.get_kernel_state(self.kernel_id)

    def _require(self, operation: str) -> RingKernelRuntime:
        if self._runtime is None or self._final is not None:
            raise KernelStateError(self.kernel_id, self.state.name, operation)
        return self._runtime

    async def launch(self) -> None:
        if self._runtime is not None or self._final is not None:
            raise KernelStateError(self.kernel_id, self.state.name, "launch")
        from dotcompute.ring_kernels.runtime import RingKernelRuntime

        runtime = RingKernelRuntime()
        await runtime.launch(
            self.kernel_id,
            self.kernel_func,
            config=self.config,
            input_type=self.input_type,
            output_type=self.output_type,
        )
        self._runtime = runtime

    async def activate(self) -> None:
        await self._require("activate").activate(self.kernel_id)

    async def deactivate(self) -> None:
        await self._require("deactivate").deactivate(self.kernel_id)

    async def reactivate(self) -> None:
        await self._require("reactivate").reactivate(self.kernel_id)

    async def terminate(self, timeout: float = 5.0, *, drain: bool = False) -> dict[str, Any] | None:
        if self._final is not None:
            return None
        if self._runtime is None:
            self._final = KernelState.TERMINATED
            return None
        report = await self._runtime.terminate(self.kernel_id, timeout, drain=drain)
        self._final = KernelState.TERMINATED
        await self._runtime.shutdown()
        self._runtime = None
        return report

    async def send(self, message: Any, timeout: float | None = None) -> None:
        await self._require("send message").send(self.kernel_id, message, timeout=timeout)

    async def receive(self, timeout: float | None = None) -> Any:
        return await self._require("receive message").receive(self.kernel_id, timeout=timeout)

    def get_telemetry(self) -> Any:
        return self._require("get telemetry of").get_telemetry(self.kernel_id)

    def __repr__(self) -> str:
        return f"RingKernel(kernel_id={self.kernel_id!r}, state={self.state.name})"


@contextlib.asynccontextmanager
async def managed_kernel(
    kernel_id: str, kernel_func: Callable[..., Any], **kwargs: Any
) -> AsyncIterator[RingKernel]:
    """Launches and activates a ``RingKernel``; terminates it on exit (also on errors)."""
    kernel = RingKernel(kernel_id, kernel_func, **kwargs)
    await kernel.launch()
    try:
        await kernel.activate()
        yield kernel
    finally:
        await kernel.terminate()


__all__ = ["KernelState", "RingKernelConfig", "KernelContext", "RingKernel", "managed_kernel"]
