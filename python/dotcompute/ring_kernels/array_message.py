"""``ArrayMessage``: messages whose numpy arrays travel by reference within a process.

``serialize()`` registers each array field in the ``BufferRegistry`` and
writes a reference (``{"__array_ref__": id, "shape", "dtype", "device"}``);
``deserialize()`` returns the same array object (no copy) and releases the
registration. So each serialized message holds its arrays until it is
decoded once (``BufferRegistry().increment_ref(id)`` allows more decodes),
or until ``release_arrays()``. Decoding a reference that is not registered
(released, or bytes from another process) raises
``MessageDeserializationError``: the bytes carry no data to fall back on.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID

from dotcompute import _native
from dotcompute.exceptions import MessageDeserializationError, MessageSerializationError
from dotcompute.ring_kernels.buffer_registry import BufferRegistry
from dotcompute.ring_kernels.message import RingKernelMessage, message

T = TypeVar("T")


def _is_array(v: Any) -> bool:
    return hasattr(v, "shape") and hasattr(v, "dtype") and hasattr(v, "tobytes") and getattr(v, "ndim", 0) > 0


def _serialize(self: Any) -> bytes:
    registry = BufferRegistry()
    data: dict[str, Any] = {}
    refs: dict[str, str] = {}
    try:
        for f in dataclasses.fields(self):
            if f.name == "_array_buffer_ids" or f.name.startswith("_cached"):
                continue
            value = getattr(self, f.name)
            if _is_array(value):
                handle = registry.register(value)
                self._array_buffer_ids[f.name] = handle.buffer_id
                refs[f.name] = handle.buffer_id.hex
                data[f.name] = {
                    "__array_ref__": handle.buffer_id.hex,
                    "shape": list(handle.shape),
                    "dtype": handle.dtype,
                    "device": handle.device,
                }
            else:
                data[f.name] = value
        data["__array_refs__"] = refs
        data["__array_msg__"] = True
        data["__type__"] = type(self).__name__
        return _native.pack_value(data)
    except Exception as e:
        raise MessageSerializationError(type(self), e) from e


def _deserialize(cls: type[T], data: bytes) -> T:
    registry = BufferRegistry()
    try:
        fields = _native.unpack_message(data)
        fields.pop("__array_refs__", None)
        fields.pop("__array_msg__", None)
        for name, value in list(fields.items()):
            if isinstance(value, dict) and "__array_ref__" in value:
                buffer_id = UUID(hex=value["__array_ref__"])
                array = registry.take(buffer_id)
                if array is None:
                    raise LookupError(
                        f"array {buffer_id} of field {name!r} is not registered in this process "
                        "(already released, or serialized in another process)"
                    )
                fields[name] = array
    except MessageDeserializationError:
        raise
    except Exception as e:
        raise MessageDeserializationError(cls, e) from e
    return _native.message_from_fields(cls, fields)


def _release_arrays(self: Any) -> int:
    registry = BufferRegistry()
    n = sum(1 for buffer_id in self._array_buffer_ids.values() if registry.release(buffer_id))
    self._array_buffer_ids.clear()
    return n


@dataclass
class ArrayMessage(RingKernelMessage):
    """Base class of messages with array fields passed by reference (see the module docs)."""

    _array_buffer_ids: dict[str, UUID] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    serialize = _serialize
    deserialize = classmethod(_deserialize)  # type: ignore[assignment]
    release_arrays = _release_arrays


def array_message(cls: type[T] | None = None) -> Any:
    """``@message`` for classes with array fields passed by reference."""

    def decorate(c: type[T]) -> type[T]:
        annotations = dict(c.__dict__.get("__annotations__", {}))
        if "_array_buffer_ids" not in annotations:
            annotations["_array_buffer_ids"] = "dict[str, UUID]"
            c._array_buffer_ids = field(default_factory=dict, repr=False, compare=False, kw_only=True)  # type: ignore[attr-defined]
            c.__annotations__ = annotations
        c.serialize = _serialize  # type: ignore[attr-defined]
        c.deserialize = classmethod(_deserialize)  # type: ignore[attr-defined]
        c.release_arrays = _release_arrays  # type: ignore[attr-defined]
        return message(c)

    return decorate(cls) if cls is not None else decorate


__all__ = ["ArrayMessage", "array_message"]
