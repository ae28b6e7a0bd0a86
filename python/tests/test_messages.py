"""Messages: header fields, validation, the type registry, and PyDotCompute's
wire format (bytes built by its rules decode here, and ours decode by them)."""

from __future__ import annotations

import copy
import dataclasses
import gc
import pickle
import uuid
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import msgpack
import numpy as np
import pytest

from dotcompute import RingKernelMessage, message
from dotcompute.exceptions import MessageDeserializationError, MessageSerializationError
from dotcompute.ring_kernels import deserialize_message, get_message_type, new_message_id


@message
class Req:
    values: list[float]


@message
@dataclass
class Explicit:
    a: float
    message_id: UUID = field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None


@message
@dataclass
class Bare:
    x: int


@dataclass
class Sub(RingKernelMessage):
    value: float  # a required field after the header: PyDotCompute raised TypeError


def test_message_ids_are_version_4_uuids_minted_in_rust() -> None:
    ids = {new_message_id() for _ in range(1000)}
    assert len(ids) == 1000
    for u in list(ids)[:50]:
        assert isinstance(u, UUID) and u.version == 4 and u.variant == uuid.RFC_4122
        assert UUID(str(u)) == u and hash(u) == hash(UUID(str(u)))
    assert Req(values=[]).message_id != Req(values=[]).message_id
    u = new_message_id()
    assert type(u) is UUID and u.is_safe is uuid.SafeUUID.unknown
    assert u.int == int.from_bytes(u.bytes, "big") and 0 < u.int < 1 << 128
    assert pickle.loads(pickle.dumps(u)) == u and copy.deepcopy(u) == u
    # Out of the cycle collector (a UUID cannot be part of a cycle): queued
    # messages' ids are never traversed. A copy made by Python is tracked.
    assert not gc.is_tracked(u) and not gc.is_tracked(Req(values=[]).message_id)
    assert gc.is_tracked(UUID(int=u.int))


def test_priority_check_takes_int_subclasses_in_range_and_nothing_else() -> None:
    class P(int):
        pass

    assert Req(values=[], priority=P(7)).priority == 7
    for bad in (P(300), 1 << 70, -(1 << 70), None):
        with pytest.raises(ValueError):
            Req(values=[], priority=bad)


def test_uuids_decoded_in_rust_keep_every_bit() -> None:
    for value in (0, 1, (1 << 64) - 1, 1 << 64, (1 << 127) | 5, (1 << 128) - 1):
        m = Req(values=[], correlation_id=UUID(int=value))
        back = Req.deserialize(m.serialize())
        assert type(back.correlation_id) is UUID and back.correlation_id.int == value
        assert back.correlation_id == m.correlation_id and hash(back.correlation_id) == hash(m.correlation_id)


def test_header_defaults_and_validation() -> None:
    m = Req(values=[1.0])
    assert m.priority == 128 and m.correlation_id is None
    assert Req(values=[], priority=255).priority == 255
    for bad in (-1, 256, 300, 1.5, True, "7"):
        with pytest.raises(ValueError):
            Req(values=[], priority=bad)  # PyDotCompute accepted 300 on @message classes
    with pytest.raises(ValueError):
        Explicit(a=1.0, priority=999)


def test_message_on_an_existing_dataclass_adds_the_header() -> None:
    b = Bare(x=1)  # PyDotCompute added no header fields here
    assert isinstance(b.message_id, UUID) and b.priority == 128 and b.correlation_id is None
    names = [f.name for f in dataclasses.fields(Bare)]
    assert names[:1] == ["x"] and set(names) >= {"message_id", "priority", "correlation_id"}
    # A uuid4 default factory gets the Rust-minted ids.
    assert Explicit.__dataclass_fields__["message_id"].default_factory is new_message_id


def test_ring_kernel_message_subclass_with_a_required_field() -> None:
    s = Sub(3.0)
    assert s.value == 3.0 and isinstance(s.message_id, UUID)
    assert Sub.deserialize(s.serialize()) == s


def test_reply_and_with_correlation() -> None:
    req = Req(values=[1.0])
    rep = req.reply(values=[2.0])
    assert rep.correlation_id == req.message_id and rep.message_id != req.message_id
    other = req.reply(response_class=Bare, x=3)
    assert isinstance(other, Bare) and other.correlation_id == req.message_id
    c = uuid4()
    w = req.with_correlation(c)
    assert w.correlation_id == c and w.message_id == req.message_id


def test_wire_format_is_pydotcompute_s() -> None:
    m = Explicit(a=1.5, priority=200)
    raw = msgpack.unpackb(m.serialize(), raw=False)
    assert list(raw) == ["a", "message_id", "priority", "correlation_id", "__type__"]
    assert raw["a"] == 1.5 and raw["priority"] == 200 and raw["correlation_id"] is None
    assert raw["message_id"] == {"__uuid_bin__": m.message_id.bytes}
    assert raw["__type__"] == "Explicit"
    # Byte for byte what msgpack-python packs for the same map.
    expected = msgpack.packb(
        {
            "a": 1.5,
            "message_id": {"__uuid_bin__": m.message_id.bytes},
            "priority": 200,
            "correlation_id": None,
            "__type__": "Explicit",
        }
    )
    assert m.serialize() == expected


def test_bytes_in_pydotcompute_s_format_decode() -> None:
    mid, cid = uuid4(), uuid4()
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    data = msgpack.packb(
        {
            "a": 2.5,
            "message_id": {"__uuid_bin__": mid.bytes},
            "priority": 7,
            "correlation_id": {"__uuid__": str(cid)},  # the older string form
            "extra_field_from_a_newer_sender": [1, 2],
            "__type__": "Explicit",
        }
    )
    m = Explicit.deserialize(data)
    assert (m.a, m.message_id, m.priority, m.correlation_id) == (2.5, mid, 7, cid)

    @message
    class WithArray:
        arr: object
        nested: dict

    payload = msgpack.packb(
        {
            "arr": {"__ndarray__": arr.tobytes(), "dtype": "float32", "shape": [2, 3]},
            "nested": {"k": [1, {"__uuid_bin__": mid.bytes}], "t": (1, 2)},
            "message_id": {"__uuid_bin__": mid.bytes},
            "priority": 128,
            "correlation_id": None,
            "__type__": "WithArray",
        }
    )
    w = WithArray.deserialize(payload)
    assert w.arr.dtype == np.float32 and w.arr.shape == (2, 3) and np.array_equal(w.arr, arr)
    w.arr[0, 0] = 9  # writable copy
    assert w.nested == {"k": [1, mid], "t": [1, 2]}
    # ... and back: our bytes are what msgpack-python packs for that map.
    assert msgpack.unpackb(w.serialize(), raw=False)["arr"]["__ndarray__"] == w.arr.tobytes()


def test_round_trip_of_every_supported_value() -> None:
    @message
    class All:
        n: object

    values = [
        None, True, False, 0, 127, 128, 255, 256, 65535, 65536, 2**32, 2**64 - 1, -1, -32, -33, -128,
        -129, -(2**31), -(2**63), 0.5, -1e300, "", "x" * 31, "y" * 32, "é" * 300, b"", b"\x00" * 300,
        bytearray(b"ab"), [1, [2, [3]]], {"a": {"b": None}}, {1: "int keys"}, uuid4(),
        np.float64(1.25), np.int64(3), np.arange(3), np.zeros((0, 2)),
    ]
    for v in values:
        got = All.deserialize(All(n=v).serialize()).n
        if isinstance(v, np.ndarray):
            assert np.array_equal(got, v) and got.dtype == v.dtype and got.shape == v.shape
        elif isinstance(v, (bytearray,)):
            assert got == bytes(v)
        elif isinstance(v, np.integer):
            assert got == v  # a numpy scalar has tobytes/dtype/shape: a 0-d array, as in PyDotCompute
        else:
            assert got == v, v
        # msgpack-python reads what we wrote
        msgpack.unpackb(All(n=v).serialize(), raw=False, strict_map_key=False)


def test_unsupported_values_and_bad_bytes_raise_typed_errors() -> None:
    @message
    class Holder:
        v: object

    with pytest.raises(MessageSerializationError):
        Holder(v=object()).serialize()
    with pytest.raises(MessageSerializationError):
        Holder(v=2**64).serialize()
    for bad in [b"", b"\xc1", b"\x92\x01", msgpack.packb([1, 2]), msgpack.packb({"v": 1}) + b"\x00", b"\x81\xa1v\xc7\x01\x01\x00"]:
        with pytest.raises(MessageDeserializationError):
            Holder.deserialize(bad)
    deep = b"\x91" * 600 + b"\xc0"
    with pytest.raises(MessageDeserializationError):
        Holder.deserialize(deep)
    # bytes of another message type are refused, not silently misread
    with pytest.raises(MessageDeserializationError):
        Holder.deserialize(Explicit(a=1.0).serialize())


def test_registry_by_qualified_name() -> None:
    assert get_message_type("Explicit") is Explicit
    m = deserialize_message(Explicit(a=4.0).serialize())
    assert isinstance(m, Explicit) and m.a == 4.0

    def make() -> type:
        @message
        class Explicit:  # same bare name, another module path
            z: int

        return Explicit

    twin = make()
    assert twin is not Explicit
    with pytest.raises(LookupError):
        get_message_type("Explicit")  # ambiguous: PyDotCompute silently overwrote
    assert get_message_type(f"{Explicit.__module__}.{Explicit.__qualname__}") is Explicit
    with pytest.raises(MessageDeserializationError):
        deserialize_message(msgpack.packb({"__type__": "NoSuchMessage", "priority": 1}))
