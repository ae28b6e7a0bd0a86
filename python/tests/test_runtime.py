"""The runtime: lifecycle, messaging, failures, deactivation, termination,
cancellation and timeouts, telemetry, and shutdown."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import pytest

from dotcompute import RingKernelRuntime, message, ring_kernel
from dotcompute.exceptions import (
    KernelAlreadyExistsError,
    KernelFailedError,
    KernelNotFoundError,
    KernelStateError,
    KernelTerminatingError,
    QueueFullError,
    QueueTimeoutError,
    TypeValidationError,
)
from dotcompute.ring_kernels import KernelState, RingKernel, RingKernelConfig, managed_kernel


@message
class Num:
    value: float


@message
class Out:
    value: float


async def echo(ctx):
    while not ctx.should_terminate:
        msg = await ctx.receive()
        await ctx.send(msg)


async def doubler(ctx):
    while not ctx.should_terminate:
        msg = await ctx.receive()
        await ctx.send(Out(value=msg.value * 2))


async def test_send_receive_and_send_and_receive(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, doubler, input_type=Num, output_type=Out)
        await rt.activate(kid)
        await rt.send(kid, Num(value=2.0))
        assert (await rt.receive(kid, timeout=5)).value == 4.0
        assert (await rt.send_and_receive(kid, Num(value=5.0), timeout=5)).value == 10.0
        assert rt.get_kernel_state(kid) is KernelState.ACTIVE
        assert rt.kernel_ids == [kid]


async def test_lifecycle_transitions_and_errors(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        with pytest.raises(KernelNotFoundError) as e:
            await rt.activate(kid)
        assert f"Kernel '{kid}' not found." in str(e.value)
        await rt.launch(kid, echo)
        assert rt.get_kernel_state(kid) is KernelState.LAUNCHED
        with pytest.raises(KernelAlreadyExistsError):
            await rt.launch(kid, echo)
        with pytest.raises(KernelStateError):
            await rt.send(kid, Num(value=1.0))  # not active yet
        with pytest.raises(KernelStateError):
            await rt.reactivate(kid)
        await rt.activate(kid)
        with pytest.raises(KernelStateError):
            await rt.activate(kid)
        await rt.deactivate(kid)
        assert rt.get_kernel_state(kid) is KernelState.DEACTIVATED
        await rt.reactivate(kid)
        report = await rt.terminate(kid)
        assert report["previous_state"] == "ACTIVE"
        assert kid not in rt.kernel_ids
        with pytest.raises(KernelNotFoundError):
            await rt.terminate(kid)
        # The id can be launched again.
        await rt.launch(kid, echo)
        assert rt.get_kernel_state(kid) is KernelState.LAUNCHED


async def test_message_types_are_checked(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, doubler, input_type=Num, output_type=Out)
        await rt.activate(kid)
        with pytest.raises(TypeValidationError):
            await rt.send(kid, Out(value=1.0))

        async def wrong(ctx):
            await ctx.receive()
            await ctx.send(Num(value=0.0))  # not an Out

        k2 = kid + "w"
        await rt.launch(k2, wrong, output_type=Out)
        await rt.activate(k2)
        await rt.send(k2, Num(value=1.0))
        with pytest.raises(KernelFailedError) as e:
            await rt.receive(k2, timeout=5)
        assert isinstance(e.value.__cause__, TypeValidationError)


async def test_a_failing_actor_fails_its_kernel_and_the_host_hears(kid: str) -> None:
    class Boom(Exception):
        pass

    async def failing(ctx):
        await ctx.receive()
        raise Boom("bad input")

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, failing)
        await rt.activate(kid)
        await rt.send(kid, Num(value=1.0))
        with pytest.raises(KernelFailedError) as e:
            await rt.receive(kid, timeout=5)
        assert "Boom: bad input" in str(e.value)
        assert isinstance(e.value.__cause__, Boom)
        assert rt.get_kernel_state(kid) is KernelState.FAILED
        t = rt.get_telemetry(kid)
        assert t.error_count == 1 and "bad input" in t.last_error


async def test_a_failing_actor_restarts_within_its_policy(kid: str) -> None:
    runs = []

    async def flaky(ctx):
        runs.append(1)
        msg = await ctx.receive()
        if len(runs) == 1:
            raise RuntimeError("first run fails")
        await ctx.send(msg)
        while True:
            await ctx.send(await ctx.receive())

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, flaky, config=RingKernelConfig(kid, max_restarts=2, restart_window=60))
        await rt.activate(kid)
        await rt.send(kid, Num(value=1.0))  # consumed by the failing run
        await rt.send(kid, Num(value=2.0))
        assert (await rt.receive(kid, timeout=5)).value == 2.0
        assert len(runs) == 2
        assert rt.get_telemetry(kid).restarts == 1


async def test_deactivation_is_enforced_without_actor_cooperation(kid: str) -> None:
    # The actor never looks at ctx.is_active: the runtime withholds delivery.
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo)
        await rt.activate(kid)
        await rt.deactivate(kid)
        await rt.send(kid, Num(value=1.0))
        with pytest.raises(QueueTimeoutError):
            await rt.receive(kid, timeout=0.2)
        await rt.reactivate(kid)
        assert (await rt.receive(kid, timeout=5)).value == 1.0


async def test_wait_active_returns_on_reactivate(kid: str) -> None:
    seen = []

    async def polite(ctx):
        while not ctx.should_terminate:
            if not ctx.is_active:
                await ctx.wait_active()
                seen.append("resumed")
                continue
            try:
                msg = await ctx.receive(timeout=0.05)
            except QueueTimeoutError:
                continue
            await ctx.send(msg)

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, polite)
        await rt.activate(kid)
        await rt.deactivate(kid)
        await asyncio.sleep(0.2)
        await rt.reactivate(kid)
        await rt.send(kid, Num(value=3.0))
        assert (await rt.receive(kid, timeout=5)).value == 3.0
        assert seen == ["resumed"]


async def test_terminate_wakes_an_actor_blocked_in_receive_at_once(kid: str) -> None:
    ended = []

    async def blocked(ctx):
        try:
            await ctx.receive()  # no timeout: only a terminate ends this
        except KernelTerminatingError:
            ended.append("terminating")
            raise

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, blocked)
        await rt.activate(kid)
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        report = await rt.terminate(kid, timeout=10)
        elapsed = time.perf_counter() - start
    assert ended == ["terminating"]
    assert report["forced"] is False and report["failure"] is None
    assert elapsed < 1.0  # PyDotCompute waited out the receive (10 s in its quick start)


async def test_terminate_counts_discarded_input_or_drains_it(kid: str) -> None:
    got = []

    async def slow(ctx):
        while True:
            msg = await ctx.receive()
            got.append(msg.value)

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, slow)
        await rt.activate(kid)
        await rt.deactivate(kid)
        for i in range(3):
            await rt.send(kid, Num(value=float(i)))
        report = await rt.terminate(kid)
        assert report["discarded_input"] == 3 and got == []

        k2 = kid + "d"
        await rt.launch(k2, slow)
        await rt.activate(k2)
        await rt.deactivate(k2)
        for i in range(3):
            await rt.send(k2, Num(value=float(i)))
        report = await rt.terminate(k2, drain=True)
        assert report["discarded_input"] == 0 and got == [0.0, 1.0, 2.0]


async def test_an_actor_that_ignores_terminate_is_cancelled_after_the_timeout(kid: str) -> None:
    cancelled = []

    async def stubborn(ctx):
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, stubborn)
        await rt.activate(kid)
        await asyncio.sleep(0.01)
        report = await rt.terminate(kid, timeout=0.2)
        assert report["forced"] is True
        await asyncio.sleep(0.05)
        assert cancelled == [True]


async def test_an_actor_swallowing_terminate_cannot_stall_the_loop(kid: str) -> None:
    async def swallower(ctx):
        while True:  # ignores should_terminate and every error
            try:
                await ctx.receive()
            except Exception:
                pass

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, swallower)
        await rt.activate(kid)
        await asyncio.sleep(0.01)
        start = time.perf_counter()
        report = await rt.terminate(kid, timeout=0.3)
        assert report["forced"] is True
        assert time.perf_counter() - start < 5


async def test_shutdown_of_100_blocked_actors_is_quick() -> None:
    async def waiter(ctx):
        while not ctx.should_terminate:
            await ctx.receive()

    rt = RingKernelRuntime()
    await rt.start()
    for i in range(100):
        await rt.launch(f"w{i}", waiter)
        await rt.activate(f"w{i}")
    await asyncio.sleep(0.05)
    start = time.perf_counter()
    report = await rt.shutdown()
    elapsed = time.perf_counter() - start
    assert len(report["kernels"]) == 100
    assert all(not k["forced"] for k in report["kernels"])
    # Generous: a shared 2-core machine. PyDotCompute's sequential shutdown
    # took 100 ms per polling actor and 5-10 s per blocked one.
    assert elapsed < 1.0, elapsed
    assert rt.kernel_ids == []


async def test_receive_timeout_raises_and_loses_nothing(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo)
        await rt.activate(kid)
        with pytest.raises(QueueTimeoutError) as e:
            await rt.receive(kid, timeout=0.05)
        assert e.value.operation == "receive" and e.value.kernel_id == kid
        await rt.send(kid, Num(value=7.0))
        assert (await rt.receive(kid, timeout=5)).value == 7.0


async def test_wait_for_and_cancel_leave_messages_queued(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo)
        await rt.activate(kid)
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(rt.receive(kid), 0.05)
        task = asyncio.ensure_future(rt.receive(kid))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        # Neither the timed-out nor the cancelled receive took anything.
        await rt.send(kid, Num(value=1.0))
        await rt.send(kid, Num(value=2.0))
        got = [(await rt.receive(kid, timeout=5)).value for _ in range(2)]
        assert got == [1.0, 2.0]


async def test_awaitables_compose_with_gather_and_create_task(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo)
        await rt.activate(kid)
        await asyncio.gather(*(rt.send(kid, Num(value=float(i))) for i in range(10)))
        receivers = [asyncio.create_task(rt.receive(kid, timeout=5)) for _ in range(10)]
        values = sorted(m.value for m in await asyncio.gather(*receivers))
        assert values == [float(i) for i in range(10)]


async def test_an_awaitable_that_is_never_awaited_does_nothing(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo)
        await rt.activate(kid)
        await rt.deactivate(kid)
        rt.send(kid, Num(value=1.0))  # created, never awaited
        assert rt.get_telemetry(kid).input_queue["enqueued"] == 0


def spawning(job):
    """An actor that hands each message to `job(ctx, msg)` in a task of its
    own and goes straight back to waiting in receive."""

    async def actor(ctx):
        tasks = set()
        while True:
            msg = await ctx.receive()
            t = asyncio.create_task(job(ctx, msg))
            tasks.add(t)
            t.add_done_callback(tasks.discard)

    return actor


async def test_actor_may_await_anything_and_send_from_subtasks(kid: str) -> None:
    async def later(ctx, msg):
        await asyncio.sleep(0.01)
        await ctx.send(msg)  # while the main loop waits in receive

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, spawning(later))
        await rt.activate(kid)
        await rt.send(kid, Num(value=1.0))
        assert (await rt.receive(kid, timeout=5)).value == 1.0


async def test_subtask_sends_pass_a_waiting_receive_each_time(kid: str) -> None:
    # The main loop waits in receive while a sub-task sends 50 times: each
    # send takes the context from the waiting receive, which then waits
    # again; every message arrives, in order, and the receive still works.
    async def burst(ctx, msg):
        for i in range(int(msg.value)):
            await ctx.send(Num(value=float(i)))

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, spawning(burst))
        await rt.activate(kid)
        await rt.send(kid, Num(value=50.0))
        got = [(await rt.receive(kid, timeout=5)).value for _ in range(50)]
        assert got == [float(i) for i in range(50)]
        await rt.send(kid, Num(value=1.0))
        assert (await rt.receive(kid, timeout=5)).value == 0.0


async def test_actor_side_timeouts_name_kernel_and_operation(kid: str) -> None:
    seen = []

    async def waits(ctx):
        try:
            await ctx.receive(timeout=0.05)
        except QueueTimeoutError as e:
            seen.append((e.kernel_id, e.timeout, e.operation))
        await ctx.send(Num(value=1.0))  # fills the one-slot output
        try:
            await ctx.send(Num(value=2.0), timeout=0.05)
        except QueueTimeoutError as e:
            seen.append((e.kernel_id, e.timeout, e.operation))
        await ctx.receive()

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, waits, config=RingKernelConfig(kid, output_queue_size=1))
        await rt.activate(kid)
        for _ in range(200):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.01)
        assert seen == [(kid, 0.05, "receive"), (kid, 0.05, "send")]
        assert (await rt.receive(kid, timeout=5)).value == 1.0


async def test_backpressure_strategies_apply_to_the_input(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo, config=RingKernelConfig(kid, input_queue_size=2, backpressure_strategy="reject"))
        await rt.activate(kid)
        await rt.deactivate(kid)
        await rt.send(kid, Num(value=1.0))
        await rt.send(kid, Num(value=2.0))
        with pytest.raises(QueueFullError):
            await rt.send(kid, Num(value=3.0))

        k2 = kid + "b"
        await rt.launch(k2, echo, config=RingKernelConfig(k2, input_queue_size=1))
        await rt.activate(k2)
        await rt.deactivate(k2)
        await rt.send(k2, Num(value=1.0))
        with pytest.raises(QueueFullError):
            await rt.send(k2, Num(value=2.0), timeout=0)  # full: refused at once
        with pytest.raises(QueueTimeoutError) as e:
            await rt.send(k2, Num(value=2.0), timeout=0.05)  # block waits, then times out
        assert e.value.operation == "send"

        k3 = kid + "d"
        await rt.launch(k3, echo, config=RingKernelConfig(k3, input_queue_size=2, backpressure_strategy="drop_oldest"))
        await rt.activate(k3)
        await rt.deactivate(k3)
        for v, p in [(1.0, 10), (2.0, 200), (3.0, 100)]:
            m = Num(value=v, priority=p)
            await rt.send(k3, m)
        await rt.reactivate(k3)
        got = sorted([(await rt.receive(k3, timeout=5)).value for _ in range(2)])
        assert got == [2.0, 3.0]  # the low-priority oldest was dropped
        t = rt.get_telemetry(k3)
        assert t.messages_dropped == 1


async def test_telemetry_is_recorded_by_the_runtime(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid, echo)
        await rt.activate(kid)
        for i in range(20):
            await rt.send_and_receive(kid, Num(value=float(i)), timeout=5)
        t = rt.get_telemetry(kid)
        assert t.messages_received == 20 and t.messages_sent == 20
        assert t.messages_processed >= 19
        assert t.max_latency_ns >= (t.min_latency_ns or 0) > 0
        assert t.uptime_seconds > 0 and t.throughput > 0
        assert t.input_queue["consistent"] if "consistent" in t.input_queue else True
        summary = rt.get_summary()
        assert summary["kernel_count"] == 1 and summary["total_messages_processed"] >= 19
        assert "dotcompute_kernel_messages_received_total" in rt.prometheus()
        assert set(rt.get_all_telemetry()) == {kid}


async def test_latencies_are_sampled_as_configured(kid: str) -> None:
    # One message in `latency_sample_every` (the first, then every n-th) has
    # its latencies measured; the counters stay exact.
    n = 20
    async with RingKernelRuntime() as rt:
        for every in (8, 1, 3, 0):
            k = f"{kid}-{every}"
            await rt.launch(k, echo, config=RingKernelConfig(k, latency_sample_every=every))
            await rt.activate(k)
            for i in range(n):
                await rt.send_and_receive(k, Num(value=float(i)), timeout=5)
            await rt.send(k, Num(value=-1.0))  # the handler asks for more: the 20th is done
            await rt.receive(k, timeout=5)
            t = rt.get_telemetry(k)
            assert t.messages_received == n + 1 and t.messages_processed >= n
            # The first n deliveries are done; the last may be too.
            done = [-(-count // every) if every else 0 for count in (n, n + 1)]
            assert done[0] <= t.latency_samples <= done[1], (every, t)
            assert (t.latency_p50_ns > 0) == (every > 0)
    for bad in (-1, 2**32, True, 1.5):
        with pytest.raises(ValueError):
            RingKernelConfig(kid, latency_sample_every=bad)
    # The decorator and the builder carry it to the kernel's configuration.
    from dotcompute.decorators import RingKernelBuilder, get_ring_kernel_meta

    async def built_actor(ctx):  # fresh functions: the decorator marks what it decorates
        await echo(ctx)

    async def declared_actor(ctx):
        await echo(ctx)

    built = RingKernelBuilder(kid).with_latency_sampling(1).with_handler(built_actor).build(auto_register=False)
    assert get_ring_kernel_meta(built)["config"].latency_sample_every == 1
    declared = ring_kernel(declared_actor, kernel_id=kid, auto_register=False, latency_sample_every=0)
    assert get_ring_kernel_meta(declared)["config"].latency_sample_every == 0


async def test_registry_launch_and_duplicate_definitions(kid: str) -> None:
    @ring_kernel(kernel_id=kid, input_type=Num, output_type=Out, queue_size=8)
    async def registered(ctx):
        while True:
            m = await ctx.receive()
            await ctx.send(Out(value=m.value + 1))

    with pytest.raises(KernelAlreadyExistsError) as e:

        @ring_kernel(kernel_id=kid)
        async def other(ctx):
            pass

    assert "defined at" in str(e.value)
    async with RingKernelRuntime() as rt:
        launched = await rt.launch(kid)
        assert launched.config.input_queue_size == 8
        await rt.activate(kid)
        assert (await rt.send_and_receive(kid, Num(value=1.0), timeout=5)).value == 2.0
        with pytest.raises(KernelNotFoundError) as e2:
            await rt.launch(kid + "-missing")
        assert kid in e2.value.available


async def test_kernel_scope_and_managed_kernel(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        async with rt.kernel_scope(kid, echo):
            assert rt.get_kernel_state(kid) is KernelState.ACTIVE
            await rt.send(kid, Num(value=1.0))
            await rt.receive(kid, timeout=5)
        assert kid not in rt.kernel_ids

    async with managed_kernel(kid, echo) as k:
        assert k.state is KernelState.ACTIVE
        await k.send(Num(value=4.0))
        assert (await k.receive(timeout=5)).value == 4.0
    assert k.state is KernelState.TERMINATED
    with pytest.raises(KernelStateError):
        await k.send(Num(value=1.0))


async def test_ring_kernel_standalone_states(kid: str) -> None:
    k = RingKernel(kid, echo)
    assert k.state is KernelState.CREATED
    with pytest.raises(KernelStateError):
        await k.activate()
    await k.launch()
    assert k.state is KernelState.LAUNCHED
    await k.activate()
    await k.deactivate()
    await k.reactivate()
    await k.terminate()
    assert k.state is KernelState.TERMINATED
    assert await k.terminate() is None  # idempotent


async def test_linked_kernels_route_without_the_host(kid: str) -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch(kid + "a", doubler)
        await rt.launch(kid + "b", doubler)
        rt.link(kid + "a", kid + "b")
        await rt.activate(kid + "a")
        await rt.activate(kid + "b")

        await rt.send(kid + "a", Num(value=1.0))
        # doubler(a) emits Out, which doubler(b) reads as .value too
        assert (await rt.receive(kid + "b", timeout=5)).value == 4.0


async def test_a_plain_function_actor_runs_once(kid: str) -> None:
    calls = []

    def once(ctx):
        calls.append(ctx.kernel_id)

    async with RingKernelRuntime() as rt:
        await rt.launch(kid, once)
        await rt.activate(kid)
        await asyncio.sleep(0.05)
        assert calls == [kid]
        assert rt.get_kernel_state(kid) is KernelState.TERMINATED


def test_config_validation() -> None:
    with pytest.raises(ValueError):
        RingKernelConfig("x", grid_size=0)
    with pytest.raises(ValueError):
        RingKernelConfig("x", input_queue_size=0)
    from dotcompute.exceptions import InvalidConfigurationError

    with pytest.raises(InvalidConfigurationError):
        RingKernelConfig("x", backpressure_strategy="bogus")
    with pytest.raises(InvalidConfigurationError):
        ring_kernel(kernel_id="x", queue_size=True, auto_register=False)(echo)
