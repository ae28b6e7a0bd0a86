"""Tiers 2 and 3: thread-bound kernels of the Rust runtime."""

from __future__ import annotations

import time

import pytest

from dotcompute.exceptions import KernelStateError
from dotcompute.ring_kernels import (
    CythonRingKernel,
    ThreadedKernelConfig,
    ThreadedKernelPool,
    ThreadedKernelState,
    ThreadedRingKernel,
)


def doubler(ctx):
    while not ctx.should_terminate:
        msg = ctx.receive(timeout=0.1)  # the documented idiom: None on timeout
        if msg is not None:
            ctx.send(msg * 2)


def test_threaded_round_trip_and_states() -> None:
    k = ThreadedRingKernel("t-double", doubler)
    assert k.state is ThreadedKernelState.CREATED
    with pytest.raises(KernelStateError):
        k.send(1)
    with k:
        assert k.state is ThreadedKernelState.RUNNING
        for i in range(100):
            assert k.send(i)
        assert [k.receive(timeout=5) for _ in range(100)] == [2 * i for i in range(100)]
        assert k.receive(timeout=0.01) is None
        with pytest.raises(KernelStateError):
            k.start()
        assert k.get_telemetry().messages_received == 100
    assert k.state is ThreadedKernelState.STOPPED


def test_a_full_input_waits_instead_of_losing() -> None:
    def slow(ctx):
        while not ctx.should_terminate:
            m = ctx.receive(timeout=0.1)
            if m is not None:
                time.sleep(0.001)
                ctx.send(m)

    with ThreadedRingKernel("t-slow", slow, ThreadedKernelConfig("t-slow", input_queue_size=4)) as k:
        for i in range(50):
            assert k.send(i, timeout=5)  # PyDotCompute's SPSC default overwrote queued input
        assert [k.receive(timeout=5) for _ in range(50)] == list(range(50))


def test_stop_wakes_a_blocked_kernel_and_errors_are_kept() -> None:
    def blocked(ctx):
        while not ctx.should_terminate:
            ctx.receive()  # no timeout

    k = ThreadedRingKernel("t-block", blocked)
    k.start()
    time.sleep(0.02)
    start = time.perf_counter()
    report = k.stop(timeout=5)
    assert time.perf_counter() - start < 1.0 and report["forced"] is False

    def failing(ctx):
        ctx.receive()
        raise ValueError("broken")

    f = ThreadedRingKernel("t-fail", failing)
    f.start()
    f.send(1)
    deadline = time.monotonic() + 5
    while f.state is not ThreadedKernelState.STOPPED and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(f.error, ValueError)
    f.stop()


def test_tier3_sends_to_its_output() -> None:
    def echo(ctx):
        while not ctx.should_terminate:
            m = ctx.receive(timeout=0.1)
            if m is not None:
                ctx.send(m)  # PyDotCompute's Cython ctx.send() wrote into its own input

    with CythonRingKernel("c-echo", echo) as k:
        assert k.using_rust_rings and not k.using_cython
        for i in range(1000):
            k.send(i)
        assert [k.receive(timeout=5) for _ in range(1000)] == list(range(1000))
        assert k.receive_nowait() is None


def test_pool_distributes_and_collects() -> None:
    with ThreadedKernelPool("pool", doubler, num_workers=3) as pool:
        for i in range(30):
            assert pool.send(i)
        got = sorted(pool.receive_any(timeout=5) for _ in range(30))
        assert got == sorted(2 * i for i in range(30))
        assert pool.receive_any(timeout=0.01) is None
