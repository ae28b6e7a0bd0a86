"""Tier 2: ``ThreadedRingKernel``, a blocking ``def f(ctx)`` on its own thread.

The kernel is a kernel of the Rust runtime in its ``Thread`` mode: the
runtime starts the thread, keeps the queues, the state and the telemetry.
The function holds the GIL only while its Python code runs; ``ctx.receive``
and the host's ``send``/``receive`` release it while they wait.

PyDotCompute's documented idiom works as documented::

    def worker(ctx):
        while not ctx.should_terminate:
            msg = ctx.receive(timeout=0.1)   # None on timeout
            if msg:
                ctx.send(process(msg))

Fixes over PyDotCompute: a full input queue makes ``send`` wait (or return
``False`` on timeout) instead of silently overwriting queued messages (its
default SPSC queue lost the whole ring); ``ctx.receive(timeout)`` returns
``None`` on timeout in every configuration (with ``use_spsc=False`` it raised
and killed the kernel); ``stop`` wakes a kernel blocked in ``ctx.receive()``.
"""

from __future__ import annotations

import enum
import itertools
import threading
from dataclasses import dataclass
from typing import Any, Callable

from dotcompute import _native
from dotcompute.exceptions import KernelStateError

#: What a threaded kernel's function receives: ``receive(timeout=None)``,
#: ``receive_nowait()``, ``send(msg)``, ``send_nowait(msg)``,
#: ``wait_shutdown(timeout)``, ``should_terminate``, ``kernel_id``.
ThreadedKernelContext = _native.BlockingContext


class ThreadedKernelState(enum.Enum):
    CREATED = "CREATED"
    RUNNING = "RUNNING"
    STOPPING = "STOPPING"
    STOPPED = "STOPPED"


_FROM_RUNTIME = {
    "CREATED": ThreadedKernelState.CREATED,
    "LAUNCHED": ThreadedKernelState.RUNNING,
    "ACTIVE": ThreadedKernelState.RUNNING,
    "DEACTIVATED": ThreadedKernelState.RUNNING,
    "TERMINATING": ThreadedKernelState.STOPPING,
    "TERMINATED": ThreadedKernelState.STOPPED,
    "FAILED": ThreadedKernelState.STOPPED,
}


@dataclass
class ThreadedKernelConfig:
    """``use_spsc`` is accepted for compatibility (both of PyDotCompute's queue
    choices are the runtime's queue here); ``daemon`` and ``thread_name`` too
    (the runtime names the thread ``ring-kernel-<id>``)."""

    kernel_id: str
    input_queue_size: int = 4096
    output_queue_size: int = 4096
    use_spsc: bool = True
    thread_name: str | None = None
    daemon: bool = True

    def __post_init__(self) -> None:
        for name in ("input_queue_size", "output_queue_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")


class ThreadedRingKernel:
    """``ThreadedRingKernel(kernel_id, kernel_func, config=None)``: ``start()``,
    ``send(msg, timeout=None) -> bool``, ``receive(timeout=None)``,
    ``stop(timeout=5.0)``; a context manager (start on enter, stop on exit)."""

    _spin = False

    def __init__(
        self, kernel_id: str, kernel_func: Callable[[Any], Any], config: ThreadedKernelConfig | None = None
    ) -> None:
        self.kernel_id = kernel_id
        self.kernel_func = kernel_func
        self.config = config or ThreadedKernelConfig(kernel_id=kernel_id)
        self._native = _native.BlockingKernel(
            kernel_id,
            kernel_func,
            input_queue_size=self.config.input_queue_size,
            output_queue_size=self.config.output_queue_size,
            spin=self._spin,
            thread_name=self.config.thread_name,
        )
        self._started = False

    @property
    def state(self) -> ThreadedKernelState:
        return _FROM_RUNTIME.get(self._native.state_name, ThreadedKernelState.STOPPED)

    @property
    def error(self) -> BaseException | None:
        """The exception the kernel's function raised, if it failed."""
        return self._native.error

    @property
    def is_running(self) -> bool:
        return self.state is ThreadedKernelState.RUNNING

    def start(self) -> None:
        if self._started:
            raise KernelStateError(self.kernel_id, self.state.name, "start")
        self._native.start()
        self._started = True

    def stop(self, timeout: float = 5.0) -> dict[str, Any] | None:
        """Stops the kernel (a blocked ``ctx.receive`` wakes at once)."""
        if not self._started:
            return None
        return self._native.stop(timeout)

    def _check_running(self, operation: str) -> None:
        if self.state is not ThreadedKernelState.RUNNING:
            raise KernelStateError(self.kernel_id, self.state.name, operation)

    def send(self, message: Any, timeout: float | None = None) -> bool:
        self._check_running("send message")
        return self._native.send(message, timeout)

    def receive(self, timeout: float | None = None) -> Any:
        if not self._started:
            raise KernelStateError(self.kernel_id, self.state.name, "receive message")
        return self._native.receive(timeout)

    def send_nowait(self, message: Any) -> bool:
        self._check_running("send message")
        return self._native.send_nowait(message)

    def receive_nowait(self) -> Any:
        if not self._started:
            raise KernelStateError(self.kernel_id, self.state.name, "receive message")
        return self._native.receive_nowait()

    def get_telemetry(self) -> Any:
        from dotcompute.ring_kernels.telemetry import RingKernelTelemetry

        return RingKernelTelemetry.from_runtime(self._native.telemetry())

    def __enter__(self) -> ThreadedRingKernel:
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.kernel_id!r}, state={self.state.name})"


class ThreadedKernelPool:
    """``ThreadedKernelPool(prefix, kernel_func, num_workers=4, **config)``:
    workers ``prefix_0`` .. ``prefix_{n-1}``; ``send`` distributes round-robin,
    ``receive_any(timeout)`` returns the first reply of any worker."""

    def __init__(self, prefix: str, kernel_func: Callable[[Any], Any], num_workers: int = 4, **config: Any) -> None:
        if num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {num_workers}")
        self.prefix = prefix
        self.workers = [
            ThreadedRingKernel(f"{prefix}_{i}", kernel_func, ThreadedKernelConfig(kernel_id=f"{prefix}_{i}", **config))
            for i in range(num_workers)
        ]
        self._next = itertools.cycle(range(num_workers))
        self._lock = threading.Lock()
        self._replies = _native.Queue(0, use_priority=False, kernel_id=prefix)
        self._collectors: list[threading.Thread] = []

    def _collect(self, worker: ThreadedRingKernel) -> None:
        # One collector per worker moves its replies into the shared queue;
        # each blocks (GIL released) in the worker's receive, which ends with
        # KernelTerminatedError once the worker is stopped and drained.
        while True:
            try:
                item = worker.receive()
            except Exception:
                return
            self._replies.put_blocking(item, None)

    def start_all(self) -> None:
        for w in self.workers:
            w.start()
            t = threading.Thread(target=self._collect, args=(w,), name=f"{w.kernel_id}-collector", daemon=True)
            t.start()
            self._collectors.append(t)

    def stop_all(self, timeout: float = 5.0) -> None:
        for w in self.workers:
            w.stop(timeout)
        for t in self._collectors:
            t.join(timeout)

    def send(self, message: Any, timeout: float | None = None) -> bool:
        with self._lock:
            i = next(self._next)
        return self.workers[i].send(message, timeout)

    def receive_any(self, timeout: float | None = None) -> Any:
        from dotcompute.exceptions import QueueTimeoutError

        try:
            return self._replies.get_blocking(timeout)
        except QueueTimeoutError:
            return None

    def __enter__(self) -> ThreadedKernelPool:
        self.start_all()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop_all()


__all__ = [
    "ThreadedRingKernel",
    "ThreadedKernelContext",
    "ThreadedKernelConfig",
    "ThreadedKernelState",
    "ThreadedKernelPool",
]
