"""Validation of configurations and message types.

The same functions as PyDotCompute, with its mistakes fixed: a ``bool`` is
not accepted as an integer size, ``validate_config`` resolves string
annotations (``from __future__ import annotations``) instead of crashing, and
the runtime itself validates every kernel configuration (PyDotCompute's
runtime never called these functions). Every refusal is an
``InvalidConfigurationError`` (or ``TypeValidationError`` for types).
"""

from __future__ import annotations

import dataclasses
import enum
import functools
import inspect
import threading
import typing
import warnings
from typing import Any, Callable, TypeVar, Union

from dotcompute import _native
from dotcompute.exceptions import InvalidConfigurationError, TypeValidationError

F = TypeVar("F", bound=Callable[..., Any])

#: The largest queue the runtime accepts (2**24 messages).
MAX_QUEUE_SIZE: int = _native.MAX_QUEUE_CAPACITY

_STRATEGIES = ("block", "reject", "drop_oldest")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate_queue_size(size: Any, name: str = "queue_size", max_size: int = MAX_QUEUE_SIZE) -> int:
    """``size`` as a queue capacity: an int (not a bool) in 1..``max_size``."""
    if not _is_int(size):
        raise InvalidConfigurationError(name, size, "must be an integer")
    if size < 1:
        raise InvalidConfigurationError(name, size, "must be >= 1")
    if size > max_size:
        raise InvalidConfigurationError(name, size, f"must be <= {max_size:,}")
    return size


def _dims(value: Any, name: str) -> tuple[int, ...]:
    if _is_int(value):
        dims: tuple[Any, ...] = (value,)
    elif isinstance(value, tuple):
        dims = value
    else:
        raise InvalidConfigurationError(name, value, "must be int or tuple of ints")
    if len(dims) > 3:
        raise InvalidConfigurationError(name, value, "maximum 3 dimensions")
    if not dims or not all(_is_int(d) and d >= 1 for d in dims):
        raise InvalidConfigurationError(name, value, "all dimensions must be positive integers")
    return tuple(dims)


def validate_grid_size(grid: Any, name: str = "grid_size") -> tuple[int, ...]:
    """``grid`` as a tuple of 1 to 3 positive ints."""
    return _dims(grid, name)


def validate_block_size(block: Any, name: str = "block_size", max_threads: int = 1024) -> tuple[int, ...]:
    """``block`` as a tuple of 1 to 3 positive ints whose product is at most ``max_threads``."""
    dims = _dims(block, name)
    total = 1
    for d in dims:
        total *= d
    if total > max_threads:
        raise InvalidConfigurationError(name, block, f"total threads ({total}) exceeds max ({max_threads})")
    return dims


def validate_priority(priority: Any) -> int:
    """``priority`` as an int (not a bool) in 0..255."""
    if not _is_int(priority) or not 0 <= priority <= 255:
        raise InvalidConfigurationError("priority", priority, "must be an integer in 0-255")
    return priority


def validate_backpressure_strategy(strategy: Any) -> str:
    """The canonical name (``block``, ``reject``, ``drop_oldest``) of a
    strategy given as a name (any case, ``-`` or ``_``) or a
    ``BackpressureStrategy`` member."""
    if isinstance(strategy, enum.Enum):
        strategy = strategy.value if isinstance(strategy.value, str) else strategy.name
    if not isinstance(strategy, str):
        raise InvalidConfigurationError("backpressure_strategy", strategy, f"must be one of {list(_STRATEGIES)}")
    name = strategy.strip().lower().replace("-", "_")
    if name == "dropoldest":
        name = "drop_oldest"
    if name not in _STRATEGIES:
        raise InvalidConfigurationError("backpressure_strategy", strategy, f"must be one of {list(_STRATEGIES)}")
    return name


def validate_message(cls: type) -> type:
    """Checks that ``cls`` is a message class (a dataclass with ``serialize``)."""
    if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
        raise TypeValidationError("dataclass", type(cls) if not isinstance(cls, type) else cls, "message validation")
    if not hasattr(cls, "serialize"):
        warnings.warn(f"{cls.__name__} has no serialize(); decorate it with @message", UserWarning, stacklevel=2)
    return cls


def _check_type(value: Any, expected: Any) -> bool:
    if expected is Any or expected is None or expected is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(expected)
    if origin is Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        return any(_check_type(value, a) for a in typing.get_args(expected))
    if expected is type(None):
        return value is None
    if origin is not None:
        if not isinstance(value, origin):
            return False
        args = typing.get_args(expected)
        if origin in (list, set, frozenset) and args:
            return all(_check_type(v, args[0]) for v in value)
        if origin is dict and len(args) == 2:
            return all(_check_type(k, args[0]) and _check_type(v, args[1]) for k, v in value.items())
        if origin is tuple and args:
            if len(args) == 2 and args[1] is Ellipsis:
                return all(_check_type(v, args[0]) for v in value)
            return len(args) == len(value) and all(_check_type(v, a) for v, a in zip(value, args))
        return True
    if expected is int:
        return _is_int(value)
    if expected is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if isinstance(expected, type):
        return isinstance(value, expected)
    return True


def validate_config(config_cls: type) -> Callable[[F], F]:
    """Decorator: checks a function's keyword arguments against the field
    annotations of ``config_cls`` (string annotations are resolved)."""
    hints = typing.get_type_hints(config_cls)

    def decorator(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for key, value in kwargs.items():
                if key in hints and not _check_type(value, hints[key]):
                    raise InvalidConfigurationError(key, value, f"expected {hints[key]}")
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


_KNOWN_KEYS: dict[str, Callable[[Any], Any]] = {
    "queue_size": validate_queue_size,
    "input_queue_size": lambda v: validate_queue_size(v, "input_queue_size"),
    "output_queue_size": lambda v: validate_queue_size(v, "output_queue_size"),
    "grid_size": validate_grid_size,
    "block_size": validate_block_size,
    "backpressure_strategy": validate_backpressure_strategy,
    "backpressure": validate_backpressure_strategy,
    "priority": validate_priority,
}


class RuntimeValidator:
    """Validates message types and kernel configurations; ``strict`` raises,
    otherwise problems are recorded in ``warnings``."""

    def __init__(self, strict: bool = True) -> None:
        self.strict = strict
        self._warnings: list[str] = []
        self._lock = threading.Lock()

    @property
    def warnings(self) -> list[str]:
        with self._lock:
            return list(self._warnings)

    def clear_warnings(self) -> None:
        with self._lock:
            self._warnings.clear()

    def _problem(self, error: Exception) -> bool:
        if self.strict:
            raise error
        with self._lock:
            self._warnings.append(str(error))
        return False

    def validate_message_type(self, message: Any, expected: type) -> bool:
        if isinstance(message, expected):
            return True
        return self._problem(TypeValidationError(expected, type(message), "message"))

    def validate_kernel_config(self, config: dict[str, Any]) -> dict[str, Any]:
        """The known keys of ``config``, validated (unknown keys are dropped)."""
        out: dict[str, Any] = {}
        for key, value in config.items():
            check = _KNOWN_KEYS.get(key)
            if check is None:
                continue
            try:
                out[key] = check(value)
            except InvalidConfigurationError as e:
                self._problem(e)
        return out


_validators: dict[bool, RuntimeValidator] = {}
_validators_lock = threading.Lock()


def get_validator(strict: bool = True) -> RuntimeValidator:
    """The shared validator of the given strictness."""
    with _validators_lock:
        if strict not in _validators:
            _validators[strict] = RuntimeValidator(strict)
        return _validators[strict]


__all__ = [
    "MAX_QUEUE_SIZE",
    "validate_queue_size",
    "validate_grid_size",
    "validate_block_size",
    "validate_priority",
    "validate_backpressure_strategy",
    "validate_message",
    "validate_config",
    "RuntimeValidator",
    "get_validator",
]
