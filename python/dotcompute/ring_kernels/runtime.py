"""``RingKernelRuntime``: launches ring kernels and moves messages to and from them.

The runtime is the Rust ``RingKernelRuntime``; this class adds PyDotCompute's
Python-side conveniences (the async context manager, ``kernel_scope``,
telemetry objects, loop information). ``send``, ``receive`` and
``send_and_receive`` are the Rust methods themselves: their awaitables
complete at once when the queue has room / a message, and otherwise park
the task until the Rust side wakes it.

Differences from PyDotCompute, each a fix:

* shutdown terminates every kernel concurrently and wakes actors blocked in
  ``ctx.receive()`` at once (PyDotCompute waited for each receive timeout,
  one kernel after the other: 10 s for its own quick start);
* an actor's exception reaches the host as ``KernelFailedError``;
* message types declared with ``input_type`` are checked on ``send``, and
  ``output_type`` on the actor's ``ctx.send``;
* the runtime never changes the process's event-loop policy (PyDotCompute
  installed uvloop from its constructor even with
  ``PYDOTCOMPUTE_NO_UVLOOP=1``): run on uvloop by starting your program on it
  (``uvloop.run(main())``) or by calling ``install_uvloop()`` yourself;
* telemetry is recorded (see ``dotcompute.ring_kernels.telemetry``).
"""

from __future__ import annotations

import contextlib
import platform
import sys
from typing import Any, AsyncIterator, Callable

from dotcompute import _native
from dotcompute.exceptions import KernelNotFoundError
from dotcompute.ring_kernels.lifecycle import KernelState, RingKernelConfig
from dotcompute.ring_kernels.telemetry import RingKernelTelemetry, TelemetryCollector


class LaunchedKernel:
    """What ``launch`` returns: a view of one kernel of a runtime."""

    def __init__(self, runtime: RingKernelRuntime, kernel_id: str) -> None:
        self.runtime = runtime
        self.kernel_id = kernel_id

    @property
    def state(self) -> KernelState:
        return self.runtime.get_kernel_state(self.kernel_id)

    @property
    def config(self) -> Any:
        return self.runtime._info(self.kernel_id).get("config")

    def send(self, message: Any, timeout: float | None = None) -> Any:
        return self.runtime.send(self.kernel_id, message, timeout=timeout)

    def receive(self, timeout: float | None = None) -> Any:
        return self.runtime.receive(self.kernel_id, timeout=timeout)

    def __repr__(self) -> str:
        return f"LaunchedKernel({self.kernel_id!r}, state={self.state.name})"


class RingKernelRuntime(_native.Runtime):
    """Coordinates ring kernels: ``async with RingKernelRuntime() as runtime: ...``.

    ``terminate_timeout`` (seconds) is how long ``terminate`` and ``shutdown``
    wait for an actor to return after it was told to stop, before cancelling
    its task. ``use_uvloop`` and ``use_eager_tasks`` are accepted for
    compatibility and change nothing global (see the module docs).
    """

    def __init__(
        self,
        *,
        enable_telemetry: bool = True,
        use_uvloop: bool | None = None,
        use_eager_tasks: bool | None = None,
        terminate_timeout: float = 5.0,
    ) -> None:
        self._enable_telemetry = enable_telemetry
        self._use_uvloop = use_uvloop
        self._use_eager_tasks = use_eager_tasks
        self._active = False
        self._collector = TelemetryCollector(self) if enable_telemetry else None

    # ---- lifecycle of the runtime ------------------------------------------

    @property
    def is_active(self) -> bool:
        return self._active

    async def start(self) -> None:
        """Marks the runtime active (after a shutdown: a fresh, empty runtime)."""
        self._restart()
        self._active = True

    async def shutdown(self, timeout: float | None = None) -> dict[str, Any]:
        """Terminates every kernel concurrently (each within ``timeout`` seconds,
        default ``terminate_timeout``); returns the terminate reports."""
        report = await self._shutdown(timeout)
        self._active = False
        return report

    async def __aenter__(self) -> RingKernelRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.shutdown()

    # ---- kernels ---------------------------------------------------------------

    async def launch(
        self,
        kernel_id: str,
        kernel_func: Callable[..., Any] | Any | None = None,
        *,
        config: RingKernelConfig | None = None,
        input_type: type | None = None,
        output_type: type | None = None,
    ) -> LaunchedKernel:
        """Phase 1: creates the kernel's queues. ``kernel_func`` defaults to
        the ``@ring_kernel`` registered under ``kernel_id``; it may also be a
        built-in kernel from ``dotcompute.kernels``."""
        if kernel_func is not None and hasattr(kernel_func, "_dotcompute_launch"):
            kernel_func._dotcompute_launch(self, kernel_id)
            return LaunchedKernel(self, kernel_id)
        meta: dict[str, Any] = {}
        if kernel_func is None:
            kernel_func, meta = _native.registered_kernel(kernel_id)
        else:
            meta = getattr(kernel_func, "_ring_kernel_meta", None) or {}
        if not callable(kernel_func):
            raise TypeError(f"kernel_func must be callable, got {kernel_func!r}")
        if config is None:
            base = meta.get("config")
            if base is not None and base.kernel_id != kernel_id:
                base = RingKernelConfig(**{**vars(base), "kernel_id": kernel_id})
            config = base or RingKernelConfig(kernel_id=kernel_id)
        if input_type is None:
            input_type = meta.get("input_type")
        if output_type is None:
            output_type = meta.get("output_type")
        self._launch_python(
            kernel_id,
            kernel_func,
            input_queue_size=config.input_queue_size,
            output_queue_size=config.output_queue_size,
            backpressure=config.backpressure_strategy,
            output_backpressure=config.output_backpressure,
            send_timeout=config.send_timeout,
            input_type=input_type,
            output_type=output_type,
            max_restarts=config.max_restarts,
            restart_window=config.restart_window,
            latency_sample_every=config.latency_sample_every,
            info={"kind": "python", "config": config, "input_type": input_type, "output_type": output_type},
        )
        if self._collector is not None:
            self._collector.register_kernel(kernel_id)
        return LaunchedKernel(self, kernel_id)

    async def activate(self, kernel_id: str) -> None:
        """Phase 2: starts the kernel's actor (its task exists when this returns)."""
        await self._activate(kernel_id)

    async def deactivate(self, kernel_id: str) -> None:
        """Pauses delivery: nothing reaches the actor until ``reactivate``; sends are queued."""
        self._deactivate(kernel_id)

    async def reactivate(self, kernel_id: str) -> None:
        """Resumes delivery after ``deactivate``."""
        self._reactivate(kernel_id)

    async def terminate(self, kernel_id: str, timeout: float | None = None, *, drain: bool = False) -> dict[str, Any]:
        """Stops the kernel and removes it. Without ``drain``, queued input is
        discarded (and counted); with it, the actor gets it first. Returns the report."""
        report = await self._terminate(kernel_id, timeout, drain)
        if self._collector is not None:
            self._collector.unregister_kernel(kernel_id)
        return report

    @contextlib.asynccontextmanager
    async def kernel_scope(
        self, kernel_id: str, kernel_func: Callable[..., Any] | None = None, **kwargs: Any
    ) -> AsyncIterator[LaunchedKernel]:
        """Launches and activates a kernel for the ``async with`` block, then terminates it."""
        launched = await self.launch(kernel_id, kernel_func, **kwargs)
        try:
            await self.activate(kernel_id)
            yield launched
        finally:
            if kernel_id in self.kernel_ids:
                await self.terminate(kernel_id)

    def get_kernel_state(self, kernel_id: str) -> KernelState:
        return KernelState(self._state(kernel_id))

    def get_kernel(self, kernel_id: str) -> LaunchedKernel:
        if kernel_id not in self.kernel_ids:
            raise KernelNotFoundError(kernel_id, self.kernel_ids)
        return LaunchedKernel(self, kernel_id)

    # ---- telemetry ----------------------------------------------------------------

    def get_telemetry(self, kernel_id: str) -> RingKernelTelemetry | None:
        """A snapshot of the kernel's telemetry (None if telemetry is disabled)."""
        if self._collector is None:
            return None
        t = self._collector.get_kernel_telemetry(kernel_id)
        if t is None:
            raise KernelNotFoundError(kernel_id, self.kernel_ids)
        return t

    def get_all_telemetry(self) -> dict[str, RingKernelTelemetry]:
        if self._collector is None:
            return {}
        return self._collector.get_all_telemetry()

    def get_summary(self) -> dict[str, Any]:
        if self._collector is None:
            return {
                "kernel_count": len(self.kernel_ids),
                "total_messages_processed": 0,
                "total_messages_dropped": 0,
                "total_errors": 0,
            }
        summary = self._collector.get_summary()
        native = self._summary()
        summary.update(
            {
                "total_received": native["total_received"],
                "total_rejected": native["total_rejected"],
                "total_restarts": native["total_restarts"],
            }
        )
        return summary

    def get_loop_info(self) -> dict[str, Any]:
        from dotcompute.ring_kernels._loop import get_loop_info

        info = get_loop_info()
        info["runtime_uvloop_installed"] = False
        info["runtime_eager_tasks_installed"] = False
        info["python_version"] = sys.version.split()[0]
        info["platform"] = platform.platform()
        return info

    def __repr__(self) -> str:
        return f"RingKernelRuntime(kernels={self.kernel_ids}, active={self._active})"


__all__ = ["RingKernelRuntime", "LaunchedKernel"]
