"""The exceptions of dotcompute.

The hierarchy, constructor arguments and messages are PyDotCompute's, so an
``except`` clause written for PyDotCompute catches the same conditions here.
Added where PyDotCompute never reported a condition:

* ``KernelFailedError``: the kernel's actor raised (the actor's exception is
  its ``__cause__``); PyDotCompute swallowed it and left the kernel ACTIVE.
* ``KernelTerminatedError``: the kernel has ended and will produce nothing more.
* ``KernelTerminatingError``: raised *inside* an actor by ``ctx.receive()`` /
  ``ctx.send()`` once its kernel is being terminated (letting it propagate
  ends the actor cleanly).
* ``QueueClosedError``: a send to a closed queue.
* ``RuntimeShutdownError``: the runtime has been shut down.
* ``BufferStateError``: an illegal ``UnifiedBuffer`` state change.

``DotComputeError`` is the base class; ``PyDotComputeError`` is the same
class under PyDotCompute's name.
"""

from __future__ import annotations

import builtins
from typing import Any


def _name(t: Any) -> str:
    return getattr(t, "__name__", None) or str(t)


class DotComputeError(Exception):
    """Base class of every dotcompute error."""


PyDotComputeError = DotComputeError


# ---- kernels ---------------------------------------------------------------


class KernelError(DotComputeError):
    """Base class of kernel errors."""


class KernelNotFoundError(KernelError):
    """No kernel with this id is launched (or registered, for ``launch``)."""

    def __init__(self, kernel_id: str, available: list[str] | None = None) -> None:
        self.kernel_id = kernel_id
        self.available = list(available or [])
        text = f"Kernel '{kernel_id}' not found."
        if self.available:
            text += f" Available kernels: {self.available}"
        text += f"\nHint: Did you forget to call runtime.launch('{kernel_id}')?"
        super().__init__(text)


class KernelStateError(KernelError):
    """The operation is not allowed in the kernel's current state."""

    def __init__(self, kernel_id: str, current_state: Any, operation: str) -> None:
        self.kernel_id = kernel_id
        self.current_state = current_state
        self.operation = operation
        state = getattr(current_state, "name", current_state)
        super().__init__(f"Cannot {operation} kernel '{kernel_id}' from state '{state}'")


class KernelAlreadyExistsError(KernelError):
    """A kernel with this id is already launched (or registered)."""

    def __init__(self, kernel_id: str, detail: str | None = None) -> None:
        self.kernel_id = kernel_id
        self.detail = detail
        text = f"Kernel '{kernel_id}' is already registered"
        if detail:
            text += f": {detail}"
        super().__init__(text)


class KernelFailedError(KernelError):
    """The kernel's actor raised (or its Rust handler failed) and it was not restarted."""

    def __init__(self, kernel_id: str, error: str) -> None:
        self.kernel_id = kernel_id
        self.error = error
        super().__init__(f"Kernel '{kernel_id}' failed: {error}")


class KernelTerminatedError(KernelError):
    """The kernel has ended; no more messages will come from it."""

    def __init__(self, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        super().__init__(f"Kernel '{kernel_id}' has terminated")


class KernelTerminatingError(KernelError):
    """Raised inside an actor once its kernel is being terminated."""

    def __init__(self, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        super().__init__(f"Kernel '{kernel_id}' is terminating")


class RuntimeShutdownError(DotComputeError):
    """The runtime has been shut down."""

    def __init__(self, detail: str = "") -> None:
        super().__init__("The runtime has been shut down" + (f": {detail}" if detail else ""))


# ---- messages ---------------------------------------------------------------


class MessageError(DotComputeError):
    """Base class of message errors."""


class MessageSerializationError(MessageError):
    """A message could not be encoded."""

    def __init__(self, message_type: Any, cause: Any) -> None:
        self.message_type = message_type
        self.cause = cause
        super().__init__(f"Failed to serialize message of type '{_name(message_type)}': {cause}")


class MessageDeserializationError(MessageError):
    """Bytes could not be decoded into a message."""

    def __init__(self, message_type: Any, cause: Any) -> None:
        self.message_type = message_type
        self.cause = cause
        super().__init__(f"Failed to deserialize message to type '{_name(message_type)}': {cause}")


# ---- queues -------------------------------------------------------------------


class QueueError(DotComputeError):
    """Base class of queue errors."""


class QueueFullError(QueueError):
    """The queue refused the message (it is full and its strategy refuses)."""

    def __init__(self, kernel_id: str, queue_size: int, queue: str = "input") -> None:
        self.kernel_id = kernel_id
        self.queue_size = queue_size
        self.queue = queue
        super().__init__(
            f"{queue.capitalize()} queue for kernel '{kernel_id}' is full (size: {queue_size})"
        )


class QueueTimeoutError(QueueError):
    """A wait on a queue ran out of time."""

    def __init__(self, kernel_id: str, timeout: float, operation: str) -> None:
        self.kernel_id = kernel_id
        self.timeout = timeout
        self.operation = operation
        super().__init__(f"Timeout ({timeout}s) waiting to {operation} message for kernel '{kernel_id}'")


class QueueClosedError(QueueError, RuntimeError):
    """The queue is closed: it accepts nothing more."""

    def __init__(self, kernel_id: str) -> None:
        self.kernel_id = kernel_id
        super().__init__(f"Queue for kernel '{kernel_id}' is closed")


# ---- buffers -------------------------------------------------------------------


class BufferError(DotComputeError):  # noqa: A001 - PyDotCompute's name
    """Base class of buffer errors (PyDotCompute's name; it shadows the builtin if star-imported)."""


class BufferNotAllocatedError(BufferError):
    """The buffer has no memory yet."""

    def __init__(self) -> None:
        super().__init__("Buffer has not been allocated. Call allocate() first.")


class BufferSyncError(BufferError):
    """A copy between host and device failed."""

    def __init__(self, direction: str, cause: Any) -> None:
        self.direction = direction
        self.cause = cause
        super().__init__(f"Failed to sync buffer {direction}: {cause}")


class BufferStateError(BufferError):
    """The buffer's state does not allow the operation (it would lose writes)."""

    def __init__(self, operation: str, state: Any, reason: str) -> None:
        self.operation = operation
        self.state = state
        self.reason = reason
        super().__init__(f"Cannot {operation} in state {getattr(state, 'name', state)}: {reason}")


# ---- backends --------------------------------------------------------------------


class BackendError(DotComputeError):
    """Base class of backend errors."""


class BackendNotAvailableError(BackendError):
    """The backend cannot be used on this machine."""

    def __init__(self, backend_name: str, reason: str) -> None:
        self.backend_name = backend_name
        self.reason = reason
        super().__init__(f"Backend '{backend_name}' is not available: {reason}")


class CUDAError(BackendError):
    """A CUDA operation failed (or CUDA is not available)."""


class MetalError(BackendError):
    """A Metal operation failed (Metal is not supported by dotcompute)."""


class MSLCompilationError(MetalError):
    """A Metal shader did not compile."""

    def __init__(self, shader_name: str, error_message: str) -> None:
        self.shader_name = shader_name
        self.error_message = error_message
        super().__init__(f"Failed to compile MSL shader '{shader_name}': {error_message}")


# ---- compilation and validation -------------------------------------------------


class CompilationError(DotComputeError):
    """Base class of compilation errors."""


class KernelCompilationError(CompilationError):
    """A kernel did not compile."""

    def __init__(self, kernel_name: str, cause: Any) -> None:
        self.kernel_name = kernel_name
        self.cause = cause
        super().__init__(f"Failed to compile kernel '{kernel_name}': {cause}")


class ValidationError(DotComputeError):
    """Base class of validation errors."""


class InvalidConfigurationError(ValidationError):
    """A configuration value is out of range or unknown."""

    def __init__(self, parameter: str, value: Any, reason: str) -> None:
        self.parameter = parameter
        self.value = value
        self.reason = reason
        super().__init__(f"Invalid configuration: {parameter}={value!r} - {reason}")


class TypeValidationError(ValidationError):
    """A value is not of the type a kernel or message declares."""

    def __init__(self, expected: Any, actual: Any, context: str) -> None:
        self.expected = expected
        self.actual = actual
        self.context = context
        super().__init__(f"Type mismatch in {context}: expected {_name(expected)}, got {_name(actual)}")


__all__ = [name for name, value in list(globals().items()) if isinstance(value, type) and issubclass(value, builtins.BaseException)]
