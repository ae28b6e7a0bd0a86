"""Messages: ``RingKernelMessage``, the ``@message`` decorator and the wire format.

A message is a dataclass with three header fields:

* ``message_id`` (``uuid.UUID``): minted in Rust (a version-4 UUID built
  without ``uuid.uuid4()``'s ``os.urandom`` call, about ten times cheaper);
* ``priority`` (``int``, 0-255, default 128): validated when the message is
  built, for ``@message`` classes too (PyDotCompute validated only
  ``RingKernelMessage`` subclasses);
* ``correlation_id`` (``uuid.UUID | None``).

``@message`` works on a plain class (the header fields are appended,
keyword-only) and on an existing dataclass (missing header fields are added,
which PyDotCompute did not do; a ``message_id`` whose default factory is
``uuid.uuid4`` is given the Rust-minted ids instead). In both of those cases
the decorator returns a dataclass subclass with the same name.

``serialize()`` / ``deserialize()`` speak PyDotCompute's wire format (a
MessagePack map of the fields plus ``__type__``; UUIDs as
``{"__uuid_bin__": 16 bytes}``; numpy arrays as
``{"__ndarray__", "dtype", "shape"}``), encoded and decoded in Rust.

The type registry is keyed by the class's qualified name
(``module.QualName``): two classes with the same bare name no longer
overwrite each other. ``deserialize_message`` resolves the bare name on the
wire and refuses an unknown or ambiguous one instead of guessing.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from dotcompute import _native
from dotcompute.exceptions import MessageDeserializationError

T = TypeVar("T")

#: A fresh version-4 ``uuid.UUID``, minted in Rust.
new_message_id = _native.new_message_id

_HEADER = ("message_id", "priority", "correlation_id")

_registry_lock = threading.Lock()
_registry: dict[str, type] = {}


def _register(cls: type) -> None:
    key = f"{cls.__module__}.{cls.__qualname__}"
    with _registry_lock:
        _registry[key] = cls


def _bad_priority(p: Any) -> ValueError:
    return ValueError(f"Priority must be 0-255, got {p!r}")


def _check_priority(p: Any) -> None:
    if type(p) is not int:
        if isinstance(p, bool) or not isinstance(p, int):
            raise _bad_priority(p)
    if not 0 <= p <= 255:
        raise _bad_priority(p)


def _wire_fields(cls: type) -> tuple[str, ...]:
    return tuple(f.name for f in dataclasses.fields(cls) if not f.name.startswith("_cached"))


class _MessageMethods:
    """Methods every message class gets (mixed in by ``@message`` and ``RingKernelMessage``)."""

    def serialize(self) -> bytes:
        """The message in PyDotCompute's wire format (MessagePack)."""
        return _native.serialize_message(self)

    @classmethod
    def deserialize(cls: type[T], data: bytes) -> T:
        """A message of this class from wire bytes.

        Raises ``MessageDeserializationError`` for malformed bytes, or bytes
        whose ``__type__`` names another class.
        """
        return _native.deserialize_message(cls, data)

    def _to_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in type(self)._dotcompute_wire_fields}  # type: ignore[attr-defined]

    @classmethod
    def _from_dict(cls: type[T], data: dict[str, Any]) -> T:
        return _native.message_from_fields(cls, dict(data))

    @classmethod
    def _get_fields(cls) -> tuple[dataclasses.Field[Any], ...]:
        return dataclasses.fields(cls)  # type: ignore[arg-type]

    @classmethod
    def _get_field_names(cls) -> frozenset[str]:
        return frozenset(f.name for f in dataclasses.fields(cls))  # type: ignore[arg-type]

    def with_correlation(self: T, correlation_id: UUID) -> T:
        """A copy with the same ``message_id`` and this ``correlation_id``."""
        return dataclasses.replace(self, correlation_id=correlation_id)  # type: ignore[type-var]

    def reply(self, **kwargs: Any) -> Any:
        """A new message answering this one: ``correlation_id`` is this
        message's id. ``response_class=`` picks the class (default: this one)."""
        response_class = kwargs.pop("response_class", type(self))
        kwargs.setdefault("correlation_id", self.message_id)  # type: ignore[attr-defined]
        return response_class(**kwargs)


def _install(cls: type) -> type:
    for name, value in vars(_MessageMethods).items():
        if not name.startswith("__") and not hasattr(cls, name):
            setattr(cls, name, value)
    cls._dotcompute_wire_fields = _wire_fields(cls)  # type: ignore[attr-defined]
    cls._dotcompute_message = True  # type: ignore[attr-defined]
    _register(cls)
    return cls


def _validating_post_init(user_post_init: Any) -> Any:
    if user_post_init is None:
        # Native: checks an exact int in range itself, hands anything else
        # to _check_priority (int subclasses in range pass; the rest raise),
        # and costs no Python frame per message built.
        return _native.message_post_init

    else:

        def __post_init__(self: Any, *args: Any) -> None:  # type: ignore[misc]
            p = self.priority
            if type(p) is not int or not 0 <= p <= 255:
                _check_priority(p)
            user_post_init(self, *args)

    return __post_init__


def _header_fields() -> dict[str, Any]:
    return {
        "message_id": field(default_factory=new_message_id, kw_only=True),
        "priority": field(default=128, kw_only=True),
        "correlation_id": field(default=None, kw_only=True),
    }


_HEADER_TYPES: dict[str, Any] = {"message_id": UUID, "priority": int, "correlation_id": "UUID | None"}


@dataclass
class RingKernelMessage(_MessageMethods):
    """Base class of messages (the header fields are keyword-only, so a
    subclass may declare required fields: ``@dataclass class M(RingKernelMessage): value: float``)."""

    message_id: UUID = field(default_factory=new_message_id, kw_only=True)
    priority: int = field(default=128, kw_only=True)
    correlation_id: UUID | None = field(default=None, kw_only=True)

    def __post_init__(self) -> None:
        _check_priority(self.priority)

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        _register(cls)


_install(RingKernelMessage)


def _uses_uuid4(cls: type) -> bool:
    f = {x.name: x for x in dataclasses.fields(cls)}.get("message_id")
    return f is not None and f.default_factory is uuid.uuid4


def message(cls: type[T] | None = None) -> Any:
    """Makes ``cls`` a message class (see the module docs).

    >>> @message
    ... class VectorAddRequest:
    ...     a: float
    ...     b: float
    >>> VectorAddRequest(a=1.0, b=2.0).priority
    128
    """

    def decorate(cls: type[T]) -> type[T]:
        if getattr(cls, "__dict__", {}).get("_dotcompute_message"):
            return cls
        if not dataclasses.is_dataclass(cls):
            annotations = dict(cls.__dict__.get("__annotations__", {}))
            for name, default in _header_fields().items():
                if name not in annotations:
                    annotations[name] = _HEADER_TYPES[name]
                    setattr(cls, name, default)
            cls.__annotations__ = annotations
            cls.__post_init__ = _validating_post_init(cls.__dict__.get("__post_init__"))  # type: ignore[attr-defined]
            cls = dataclass(cls)
            return _install(cls)  # type: ignore[return-value]
        # An existing dataclass: a subclass of the same name adds what is
        # missing (header fields, Rust-minted ids, priority validation).
        present = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        ns: dict[str, Any] = {
            "__module__": cls.__module__,
            "__qualname__": cls.__qualname__,
            "__doc__": cls.__doc__,
            "__annotations__": {},
        }
        for name, default in _header_fields().items():
            if name not in present:
                ns["__annotations__"][name] = _HEADER_TYPES[name]
                ns[name] = default
        if _uses_uuid4(cls):
            ns["__annotations__"]["message_id"] = UUID
            ns["message_id"] = field(default_factory=new_message_id)
        ns["__post_init__"] = _validating_post_init(getattr(cls, "__post_init__", None))
        params = cls.__dataclass_params__  # type: ignore[attr-defined]
        sub = type(cls.__name__, (cls,), ns)
        sub = dataclass(
            sub,
            init=params.init,
            repr=params.repr,
            eq=params.eq,
            order=params.order,
            unsafe_hash=params.unsafe_hash,
            frozen=params.frozen,
        )
        return _install(sub)  # type: ignore[return-value]

    if cls is not None:
        return decorate(cls)
    return decorate


def _candidates(name: str) -> list[type]:
    with _registry_lock:
        return [c for key, c in _registry.items() if key.rsplit(".", 1)[-1] == name or c.__name__ == name]


def get_message_type(name: str) -> type | None:
    """The registered message class named ``name`` (a bare class name or a
    ``module.QualName``); ``None`` if there is none.

    Raises ``LookupError`` if the bare name belongs to several classes.
    """
    with _registry_lock:
        if name in _registry:
            return _registry[name]
    found = {id(c): c for c in _candidates(name)}
    if not found:
        return None
    if len(found) > 1:
        names = sorted(f"{c.__module__}.{c.__qualname__}" for c in found.values())
        raise LookupError(f"message type name {name!r} is ambiguous: {names}")
    return next(iter(found.values()))


def deserialize_message(data: bytes) -> Any:
    """A message of whatever registered class its ``__type__`` names.

    Raises ``MessageDeserializationError`` for malformed bytes and for a
    ``__type__`` that names no registered class, or several.
    """
    try:
        fields = _native.unpack_message(data)
        type_name = fields.get("__type__")
        if not isinstance(type_name, str):
            raise ValueError("the bytes carry no __type__")
        cls = get_message_type(type_name)
        if cls is None:
            raise LookupError(f"no message class named {type_name!r} is registered")
    except MessageDeserializationError:
        raise
    except Exception as e:
        raise MessageDeserializationError(RingKernelMessage, e) from e
    return _native.message_from_fields(cls, fields)


__all__ = [
    "RingKernelMessage",
    "message",
    "get_message_type",
    "deserialize_message",
    "new_message_id",
]
