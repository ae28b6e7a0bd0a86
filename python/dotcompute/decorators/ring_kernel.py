"""``@ring_kernel``: defines a ring kernel (an actor) and registers it.

The registry is kept by the Rust runtime. An id defined twice in different
places is refused with ``KernelAlreadyExistsError`` naming both places (pass
``replace=True`` to take over an id on purpose); defining it again from the
same place (a re-run notebook cell, a reloaded module) replaces it.
PyDotCompute overwrote silently.

Every option is validated when the decorator runs, not at launch:
queue sizes, grid and block sizes, the backpressure strategy (which, unlike
in PyDotCompute, is applied to the kernel's input queue), and the message
types (classes, or None for "anything").
"""

from __future__ import annotations

import inspect
from typing import Any, Callable, TypeVar

from dotcompute import _native
from dotcompute.decorators.validators import (
    validate_backpressure_strategy,
    validate_block_size,
    validate_grid_size,
    validate_queue_size,
)
from dotcompute.exceptions import InvalidConfigurationError

F = TypeVar("F", bound=Callable[..., Any])


def _location(fn: Any) -> str:
    name = f"{getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', repr(fn))}"
    code = getattr(fn, "__code__", None)
    if code is not None:
        return f"{name} ({code.co_filename}:{code.co_firstlineno})"
    return name


def _check_type(name: str, t: Any) -> None:
    if t is not None and not isinstance(t, type):
        raise InvalidConfigurationError(name, t, "must be a class (or None for any message)")


def ring_kernel(
    func: F | None = None,
    *,
    kernel_id: str | None = None,
    input_type: type | None = None,
    output_type: type | None = None,
    queue_size: int = 4096,
    input_queue_size: int | None = None,
    output_queue_size: int | None = None,
    grid_size: int | tuple[int, ...] = 1,
    block_size: int | tuple[int, ...] = 256,
    backpressure: Any = "block",
    auto_register: bool = True,
    output_backpressure: Any = "block",
    send_timeout: float | None = None,
    max_restarts: int = 0,
    restart_window: float = 60.0,
    replace: bool = False,
    latency_sample_every: int = 8,
) -> Any:
    """Declares ``async def f(ctx)`` as a ring kernel.

    ``kernel_id`` defaults to the function's name. ``queue_size`` sets both
    queues unless ``input_queue_size`` / ``output_queue_size`` are given.
    ``backpressure`` is what a send into the full input queue does:
    ``block`` (wait), ``reject`` (``QueueFullError``) or ``drop_oldest``
    (drop the oldest message of the lowest priority band, counted).
    ``max_restarts`` > 0 restarts a failing actor (with queued input kept)
    up to that many times within ``restart_window`` seconds.
    ``latency_sample_every`` measures the queue wait and handler time of one
    message in that many (1: every message; 0: none); counts are always exact.
    """

    def decorate(fn: F) -> F:
        if not callable(fn):
            raise InvalidConfigurationError("func", fn, "must be callable")
        kid = kernel_id if kernel_id is not None else fn.__name__
        if not isinstance(kid, str) or not kid:
            raise InvalidConfigurationError("kernel_id", kid, "must be a non-empty string")
        validate_queue_size(queue_size, "queue_size")
        in_size = validate_queue_size(queue_size if input_queue_size is None else input_queue_size, "input_queue_size")
        out_size = validate_queue_size(
            queue_size if output_queue_size is None else output_queue_size, "output_queue_size"
        )
        _check_type("input_type", input_type)
        _check_type("output_type", output_type)
        from dotcompute.ring_kernels.lifecycle import RingKernelConfig

        config = RingKernelConfig(
            kernel_id=kid,
            grid_size=validate_grid_size(grid_size) if not isinstance(grid_size, int) else grid_size,
            block_size=validate_block_size(block_size) if not isinstance(block_size, int) else block_size,
            input_queue_size=in_size,
            output_queue_size=out_size,
            backpressure_strategy=validate_backpressure_strategy(backpressure),
            output_backpressure=validate_backpressure_strategy(output_backpressure),
            send_timeout=send_timeout,
            max_restarts=max_restarts,
            restart_window=restart_window,
            latency_sample_every=latency_sample_every,
        )
        meta = {
            "kernel_id": kid,
            "input_type": input_type,
            "output_type": output_type,
            "config": config,
        }
        fn._ring_kernel_meta = meta  # type: ignore[attr-defined]
        fn._original_func = fn  # type: ignore[attr-defined]
        if auto_register:
            _native.register_kernel(kid, fn, meta, _location(fn), replace)
        return fn

    if func is not None:
        return decorate(func)
    return decorate


def get_ring_kernel_meta(func: Any) -> dict[str, Any] | None:
    """The ``@ring_kernel`` metadata of ``func``, or None."""
    return getattr(func, "_ring_kernel_meta", None)


def is_ring_kernel(func: Any) -> bool:
    """Whether ``func`` was declared with ``@ring_kernel``."""
    return get_ring_kernel_meta(func) is not None


def registered_kernels() -> list[str]:
    """The ids in the registry, sorted."""
    return list(_native.registered_kernel_ids())


def unregister_kernel(kernel_id: str) -> bool:
    """Removes an id from the registry; whether it was there."""
    return bool(_native.unregister_kernel(kernel_id))


class RingKernelBuilder:
    """Fluent construction of a ring kernel: ``RingKernelBuilder("id").with_queue_size(64).with_handler(f).build()``."""

    def __init__(self, kernel_id: str) -> None:
        self._kernel_id = kernel_id
        self._options: dict[str, Any] = {}
        self._handler: Callable[..., Any] | None = None

    def _set(self, key: str, value: Any) -> RingKernelBuilder:
        self._options[key] = value
        return self

    def with_input_type(self, t: type) -> RingKernelBuilder:
        return self._set("input_type", t)

    def with_output_type(self, t: type) -> RingKernelBuilder:
        return self._set("output_type", t)

    def with_queue_size(self, n: int) -> RingKernelBuilder:
        return self._set("queue_size", n)

    def with_input_queue_size(self, n: int) -> RingKernelBuilder:
        return self._set("input_queue_size", n)

    def with_output_queue_size(self, n: int) -> RingKernelBuilder:
        return self._set("output_queue_size", n)

    def with_grid_size(self, g: int | tuple[int, ...]) -> RingKernelBuilder:
        return self._set("grid_size", g)

    def with_block_size(self, b: int | tuple[int, ...]) -> RingKernelBuilder:
        return self._set("block_size", b)

    def with_backpressure(self, strategy: Any) -> RingKernelBuilder:
        return self._set("backpressure", strategy)

    def with_restarts(self, max_restarts: int, window: float = 60.0) -> RingKernelBuilder:
        self._set("max_restarts", max_restarts)
        return self._set("restart_window", window)

    def with_latency_sampling(self, every: int) -> RingKernelBuilder:
        return self._set("latency_sample_every", every)

    def with_handler(self, handler: Callable[..., Any]) -> RingKernelBuilder:
        self._handler = handler
        return self

    def build(self, *, auto_register: bool = True) -> Callable[..., Any]:
        if self._handler is None:
            raise ValueError("Handler function is required")
        return ring_kernel(
            self._handler, kernel_id=self._kernel_id, auto_register=auto_register, **self._options
        )


def _is_async_callable(fn: Any) -> bool:
    return inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(getattr(fn, "__call__", None))


__all__ = [
    "ring_kernel",
    "get_ring_kernel_meta",
    "is_ring_kernel",
    "registered_kernels",
    "unregister_kernel",
    "RingKernelBuilder",
]
