"""The queue classes, all on the Rust queue: blocking that blocks, drops that
drop the oldest of the lowest band and are counted, nothing lost."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from dotcompute import message
from dotcompute.exceptions import QueueFullError, QueueTimeoutError
from dotcompute.ring_kernels import (
    BackpressureStrategy,
    FastMessageQueue,
    FastSPSCQueue,
    MessageQueue,
    PriorityBand,
    RingBuffer,
    SPSCQueue,
    SyncQueue,
    get_priority_band,
)


@message
class M:
    n: int


def invariant(stats: dict) -> None:
    assert stats["total_enqueued"] == stats["total_dequeued"] + stats["total_dropped"] + stats["current_size"]


async def test_block_blocks_and_times_out() -> None:
    q = MessageQueue(2, backpressure=BackpressureStrategy.BLOCK)
    await q.put(M(n=1))
    await q.put(M(n=2))
    assert q.full and q.qsize == 2
    with pytest.raises(QueueTimeoutError):
        await q.put(M(n=3), timeout=0.05)  # PyDotCompute pushed past maxsize
    assert q.qsize == 2

    async def later():
        await asyncio.sleep(0.05)
        return await q.get()

    t = asyncio.ensure_future(later())
    await q.put(M(n=3), timeout=5)  # waits for room
    assert (await t).n == 1
    invariant(q.get_stats())


async def until(condition, what: str) -> None:
    deadline = time.monotonic() + 5
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.001)


async def test_stats_count_the_gets_and_puts_that_slept() -> None:
    q = MessageQueue(1, backpressure=BackpressureStrategy.BLOCK)
    s = q.get_stats()
    assert (s["receive_sleeps"], s["send_sleeps"]) == (0, 0)
    await q.put(M(n=1))
    assert (await q.get()).n == 1  # found at once: no sleep
    getter = asyncio.ensure_future(q.get())
    await until(lambda: q.get_stats()["receive_sleeps"] == 1, "the get to sleep")
    await q.put(M(n=2))
    assert (await getter).n == 2
    await q.put(M(n=3))  # now full
    putter = asyncio.ensure_future(q.put(M(n=4)))
    await until(lambda: q.get_stats()["send_sleeps"] == 1, "the put to sleep")
    assert q.get_nowait().n == 3
    await putter
    s = q.get_stats()
    assert (s["receive_sleeps"], s["send_sleeps"]) == (1, 1)
    invariant(s)


async def test_reject_and_unbounded() -> None:
    q = MessageQueue(1, backpressure="reject")
    await q.put(M(n=1))
    with pytest.raises(QueueFullError):
        await q.put(M(n=2))
    assert q.put_nowait(M(n=2)) is False
    u = MessageQueue(0, backpressure="reject")  # PyDotCompute rejected everything
    for i in range(10_000):
        await u.put(M(n=i))
    assert u.qsize == 10_000 and not u.full


async def test_drop_oldest_drops_the_oldest_of_the_lowest_band_once() -> None:
    q = MessageQueue(2, backpressure=BackpressureStrategy.DROP_OLDEST)
    await q.put(M(n=1, priority=10))
    await q.put(M(n=2, priority=200))
    await q.put(M(n=3, priority=100))  # PyDotCompute dropped the priority-200 message
    got = [(await q.get()).n for _ in range(2)]
    assert got == [2, 3]
    s = q.get_stats()
    assert s["total_dropped"] == 1 and s["total_dequeued"] == 2  # counted once
    invariant(s)
    assert q.put_nowait(M(n=4, priority=0)) and q.put_nowait(M(n=5, priority=0))
    assert q.put_nowait(M(n=6, priority=0))
    assert q.get_stats()["total_dropped"] == 2


async def test_priority_order_and_fifo_mode() -> None:
    q = MessageQueue(10)
    for n, p in [(1, 50), (2, 200), (3, 100), (4, 250), (5, 100)]:
        await q.put(M(n=n, priority=p))
    assert [(await q.get()).n for _ in range(5)] == [4, 2, 3, 5, 1]
    f = MessageQueue(10, use_priority=False)
    for n, p in [(1, 50), (2, 200), (3, 250)]:
        await f.put(M(n=n, priority=p))
    assert [f.get_nowait().n for _ in range(3)] == [1, 2, 3]
    assert f.get_nowait() is None
    with pytest.raises(QueueTimeoutError) as e:
        await f.get(timeout=0.02)
    assert (e.value.timeout, e.value.operation) == (0.02, "receive")


async def test_fast_queue_timeouts_batches_and_serialize() -> None:
    q = FastMessageQueue(2, kernel_id="k")
    assert q.put_batch([M(n=1), M(n=2), M(n=3)]) == 2  # the count queued
    with pytest.raises(QueueFullError):
        await q.put(M(n=3), timeout=0)
    with pytest.raises(QueueFullError):
        await q.put(M(n=3), timeout=0.02)
    assert [m.n for m in q.get_batch(5)] == [1, 2]
    s = FastMessageQueue(4, serialize=True)
    m = M(n=7)
    await s.put(m)
    m.n = 8  # later changes do not reach the queue
    got = await s.get()
    assert isinstance(got, M) and got.n == 7  # PyDotCompute returned the raw bytes
    stats = q.get_stats()
    assert set(stats["band_counts"]) == {"system", "high", "normal", "low"}
    with pytest.raises(ValueError):
        M(n=1, priority=300)


def test_priority_bands() -> None:
    assert [get_priority_band(p) for p in (255, 224, 223, 160, 159, 64, 63, 0)] == [
        PriorityBand.SYSTEM, PriorityBand.SYSTEM, PriorityBand.HIGH, PriorityBand.HIGH,
        PriorityBand.NORMAL, PriorityBand.NORMAL, PriorityBand.LOW, PriorityBand.LOW,
    ]
    for bad in (300, -5, 1.0, True):
        with pytest.raises(ValueError):
            get_priority_band(bad)


async def test_ring_buffer() -> None:
    r = RingBuffer(3)
    assert r.capacity == 4
    for i in range(4):
        assert await r.put(i)
    assert await r.put(9, timeout=0.01) is False
    assert [await r.get() for _ in range(4)] == [0, 1, 2, 3]
    assert await r.get(timeout=0.01) is None


def test_sync_queue_across_threads() -> None:
    q = SyncQueue(4)
    out = []

    def consumer():
        for _ in range(1000):
            out.append(q.get(timeout=10))

    t = threading.Thread(target=consumer)
    t.start()
    for i in range(1000):
        assert q.put(i, timeout=10)
    t.join(10)
    assert out == list(range(1000))
    q.put(1)
    q.shutdown()
    with pytest.raises(RuntimeError, match="Queue is shutdown"):
        q.put(2)
    assert q.get() == 1
    with pytest.raises(RuntimeError, match="shutdown and empty"):
        q.get(timeout=1)
    with pytest.raises(QueueTimeoutError):
        SyncQueue(1).get(timeout=0.01)
    full = SyncQueue(1)
    full.put(1)
    with pytest.raises(QueueFullError):
        full.put(2, timeout=0)


def test_spsc_queue_never_loses_when_full() -> None:
    q = SPSCQueue(4)
    for i in range(4):
        assert q.put(i, timeout=0.01)
    # PyDotCompute's returned True here and overwrote the ring: all lost.
    assert q.put(99, timeout=0.01) is False
    assert [q.get(timeout=1) for _ in range(4)] == [0, 1, 2, 3]
    assert q.get(timeout=0.01) is None
    assert SPSCQueue(1).put("x", timeout=0.01)  # PyDotCompute's SPSCQueue(1) held nothing
    got = []
    t = threading.Thread(target=lambda: got.extend(q.get(timeout=10) for _ in range(10_000)))
    t.start()
    for i in range(10_000):
        assert q.put(i, timeout=10)
    t.join(10)
    assert got == list(range(10_000))


def test_fast_spsc_queue_full_put_returns_false() -> None:
    q = FastSPSCQueue(4)
    assert q.capacity == 4
    assert [q.put(i) for i in range(4)] == [True, True, True, False]  # PyDotCompute: SystemError
    assert q.put_wait(9, timeout_sec=0.01) is False
    assert q.get() == 0 and q.get_wait(0.1) == 1
    q.shutdown()
    assert q.put(5) is False  # PyDotCompute still accepted after shutdown


def test_blocking_put_releases_the_gil() -> None:
    q = SyncQueue(1)
    q.put(0)
    ticks = []
    stop = time.monotonic() + 0.3
    t = threading.Thread(target=lambda: [ticks.append(1) for _ in iter(lambda: time.monotonic() > stop, True)])
    t.start()
    with pytest.raises(QueueFullError):
        q.put(1, timeout=0.2)
    t.join()
    assert len(ticks) > 100  # the other thread ran while put waited


async def test_awaitables_return_values_as_they_are_by_every_protocol() -> None:
    from dotcompute import _native

    with pytest.raises(TypeError):
        _native.Awaitable()
    q = _native.Queue(8)
    # `await` (am_send): a tuple, None and an exception object come back as
    # they are (a StopIteration carrying a tuple would unpack it).
    for value in ((1, 2), None, ValueError("a value, not raised"), 0):
        await q.put(value)
        got = await q.get()
        assert got is value or got == value
    # The iterator protocol: the value rides on StopIteration.
    await q.put((3, 4))
    it = q.get().__await__()
    with pytest.raises(StopIteration) as stop:
        next(it)
    assert stop.value.value == (3, 4)
    await q.put(None)
    it = q.get().__await__()
    with pytest.raises(StopIteration) as stop:
        it.send(None)
    assert stop.value.value is None
    with pytest.raises(TypeError):
        q.get().send(1)
    # throw stops the wait and raises; nothing is taken.
    await q.put(5)
    w = q.get()
    with pytest.raises(KeyError):
        w.throw(KeyError("stop"))
    assert "done" in repr(w)
    assert await asyncio.wait_for(q.get(), 1) == 5
