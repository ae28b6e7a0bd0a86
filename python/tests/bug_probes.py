"""Probes of PyDotCompute's confirmed bugs (reference, section 8), written
against PyDotCompute's API so the same code runs on either package:

    python bug_probes.py pydotcompute   # prints what PyDotCompute does
    python bug_probes.py dotcompute     # prints what dotcompute does

Each probe returns an observation (a JSON value); test_pydotcompute_bugs.py
asserts that dotcompute's is the correct one and PyDotCompute's shows the bug.
"""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import json
import os
import sys
import time
import traceback
from dataclasses import dataclass, field
from uuid import UUID, uuid4

os.environ["PYDOTCOMPUTE_NO_UVLOOP"] = "1"
PKG = sys.argv[1] if len(sys.argv) > 1 else "dotcompute"
dc = importlib.import_module(PKG)
rk = importlib.import_module(f"{PKG}.ring_kernels")
exc = importlib.import_module(f"{PKG}.exceptions")
queue_mod = importlib.import_module(f"{PKG}.ring_kernels.queue")
lifecycle = importlib.import_module(f"{PKG}.ring_kernels.lifecycle")
PROBES = {}


def probe(fn):
    PROBES[fn.__name__] = fn
    return fn


def run(coro):
    return asyncio.run(coro)


@dc.message
@dataclass
class Msg:
    value: float = 0.0
    message_id: UUID = field(default_factory=uuid4)
    priority: int = 128
    correlation_id: UUID | None = None


async def _echo(ctx):
    while not ctx.should_terminate:
        try:
            m = await ctx.receive(timeout=0.05)
        except Exception:
            continue
        await ctx.send(m)


@probe
def telemetry_counts_messages():
    async def main():
        async with dc.RingKernelRuntime() as rt:
            await rt.launch("tele", _echo)
            await rt.activate("tele")
            for i in range(20):
                await rt.send("tele", Msg(value=i))
                await rt.receive("tele", timeout=2)
            await asyncio.sleep(0.1)
            return rt.get_telemetry("tele").messages_processed

    return run(main())


@probe
def bogus_backpressure_is_refused():
    try:
        lifecycle.RingKernelConfig(kernel_id="x", backpressure_strategy="bogus")
    except Exception as e:
        return type(e).__name__
    return "accepted"


@probe
def priority_block_queue_respects_maxsize():
    async def main():
        q = queue_mod.MessageQueue(2)
        await q.put(Msg(value=1))
        await q.put(Msg(value=2))
        try:
            await asyncio.wait_for(q.put(Msg(value=3), timeout=0.05), 1.0)
        except Exception as e:
            return ["raised", type(e).__name__, q.qsize]
        return ["accepted", q.qsize]

    return run(main())


@probe
def drop_oldest_keeps_high_priority():
    async def main():
        q = queue_mod.MessageQueue(2, backpressure=queue_mod.BackpressureStrategy.DROP_OLDEST)
        for p in (10, 200, 100):
            await q.put(Msg(priority=p))
        return sorted([(await q.get()).priority for _ in range(2)])

    return run(main())


@probe
def unbounded_reject_queue_accepts():
    async def main():
        q = queue_mod.MessageQueue(0, backpressure=queue_mod.BackpressureStrategy.REJECT)
        try:
            await q.put(Msg())
        except Exception as e:
            return type(e).__name__
        return q.qsize

    return run(main())


@probe
def drop_counted_once():
    q = queue_mod.MessageQueue(1, backpressure=queue_mod.BackpressureStrategy.DROP_OLDEST, use_priority=False)
    q.put_nowait(Msg())
    q.put_nowait(Msg())
    s = q.get_stats()
    return [s["total_dequeued"], s["total_dropped"], s["current_size"]]


@probe
def serialize_queue_returns_messages():
    async def main():
        q = rk.FastMessageQueue(4, serialize=True)
        await q.put(Msg(value=5))
        return type(await q.get()).__name__

    return run(main())


@probe
def spsc_queue_full_put_loses_nothing():
    sync_queue = importlib.import_module(f"{PKG}.ring_kernels.sync_queue")
    q = sync_queue.SPSCQueue(4)
    results = [q.put(i, timeout=0.01) for i in range(6)]
    items = []
    while True:
        x = q.get(timeout=0.01)
        if x is None:
            break
        items.append(x)
    return [results.count(True), items]


@probe
def actor_exception_reaches_host():
    async def failing(ctx):
        await ctx.receive(timeout=1)
        raise ValueError("boom")

    async def main():
        async with dc.RingKernelRuntime() as rt:
            await rt.launch("failing", failing)
            await rt.activate("failing")
            await rt.send("failing", Msg())
            try:
                await rt.receive("failing", timeout=0.3)
            except Exception as e:
                return [type(e).__name__, str(rt.get_kernel_state("failing").name)]
            return ["no error"]

    return run(main())


@probe
def terminate_wakes_blocked_receive():
    async def blocked(ctx):
        while not ctx.should_terminate:
            await ctx.receive()

    async def main():
        rt = dc.RingKernelRuntime()
        await rt.start()
        await rt.launch("blocked", blocked)
        await rt.activate("blocked")
        await asyncio.sleep(0.02)
        t = time.perf_counter()
        await rt.terminate("blocked", timeout=1.0)
        return round(time.perf_counter() - t, 3)

    return run(main())


@probe
def shutdown_is_concurrent():
    async def polling(ctx):
        while not ctx.should_terminate:
            try:
                await ctx.receive(timeout=0.2)
            except Exception:
                continue

    async def main():
        rt = dc.RingKernelRuntime()
        await rt.start()
        for i in range(4):
            await rt.launch(f"p{i}", polling)
            await rt.activate(f"p{i}")
        await asyncio.sleep(0.02)
        t = time.perf_counter()
        await rt.shutdown()
        return round(time.perf_counter() - t, 3)

    return run(main())


@probe
def deactivate_is_enforced():
    async def eager(ctx):  # never checks is_active
        while not ctx.should_terminate:
            try:
                m = await ctx.receive(timeout=0.05)
            except Exception:
                continue
            await ctx.send(m)

    async def main():
        async with dc.RingKernelRuntime() as rt:
            await rt.launch("eager", eager)
            await rt.activate("eager")
            await asyncio.sleep(0.02)
            await rt.deactivate("eager")
            await rt.send("eager", Msg())
            try:
                await rt.receive("eager", timeout=0.2)
                return "delivered while deactivated"
            except Exception as e:
                return type(e).__name__

    return run(main())


@probe
def threaded_receive_timeout_returns_none():
    tk = importlib.import_module(f"{PKG}.ring_kernels.threaded_kernel")
    seen = []

    def worker(ctx):
        while not ctx.should_terminate:
            m = ctx.receive(timeout=0.05)
            seen.append(m)

    k = tk.ThreadedRingKernel("tw", worker, config=tk.ThreadedKernelConfig(kernel_id="tw", use_spsc=False))
    k.start()
    time.sleep(0.3)
    state = k.state.name
    err = type(k.error).__name__ if getattr(k, "error", None) else None
    k.stop(2)
    return [state, err]


@probe
def tier3_send_goes_to_output():
    ck = importlib.import_module(f"{PKG}.ring_kernels.cython_kernel")

    def echo(ctx):
        while not ctx.should_terminate:
            m = ctx.receive(timeout=0.05)
            if m is not None:
                ctx.send(m)

    k = ck.CythonRingKernel("c3", echo)
    k.start()
    k.send("ping")
    got = k.receive(timeout=0.5)
    k.stop(2)
    return got


@probe
def message_priority_validated():
    @dc.message
    class P:
        x: int = 0

    try:
        P(priority=300)
    except Exception as e:
        return type(e).__name__
    return "accepted"


@probe
def message_on_dataclass_has_header():
    @dc.message
    @dataclass
    class D:
        x: int = 0

    return [hasattr(D(), "priority"), hasattr(D(), "message_id")]


@probe
def message_registry_collision():
    msg_mod = importlib.import_module(f"{PKG}.ring_kernels.message")

    def first():
        @dc.message
        class Twin:
            t: str = "a"

        return Twin

    def second():
        @dc.message
        class Twin:
            t: str = "b"

        return Twin

    first()
    second()
    try:
        cls = msg_mod.get_message_type("Twin")
    except Exception as e:
        return type(e).__name__
    return "resolved silently to " + cls().t


@probe
def subclass_with_required_field():
    try:

        @dataclass
        class Sub(dc.RingKernelMessage):
            value: float

        return Sub(value=1.0).value
    except Exception as e:
        return type(e).__name__


@probe
def array_message_does_not_leak():
    import numpy as np

    am = importlib.import_module(f"{PKG}.ring_kernels.array_message")
    br = importlib.import_module(f"{PKG}.ring_kernels.buffer_registry")

    @dataclass
    class A(am.ArrayMessage):
        data: object = None

    reg = br.get_buffer_registry()
    before = len(reg)
    for _ in range(10):
        A.deserialize(A(data=np.arange(4)).serialize())
    return len(reg) - before


@probe
def unified_buffer_host_dirty_clears():
    import numpy as np

    b = dc.UnifiedBuffer((4,), dtype=np.float32)
    b.allocate()
    b.host[:] = 1
    b.mark_host_dirty()
    _ = b.device
    return b.state.name


@probe
def memory_pool_takes_arguments():
    try:
        dc.MemoryPool(initial_size_mb=5)
    except Exception as e:
        return type(e).__name__
    return "ok"


@probe
def validators_refuse_bool_and_handle_string_annotations():
    v = importlib.import_module(f"{PKG}.decorators.validators")
    out = []
    try:
        v.validate_queue_size(True)
        out.append("bool accepted")
    except Exception as e:
        out.append(type(e).__name__)
    try:
        v.validate_config(lifecycle.RingKernelConfig)(lambda **kw: kw)(input_queue_size="eight")
        out.append("wrong type accepted")
    except Exception as e:
        out.append(type(e).__name__)
    return out


@probe
def telemetry_min_latency():
    t = rk.RingKernelTelemetry(kernel_id="x")
    for ns in (0, 500, 100):
        t.record_message(ns)
    return t.min_latency_ns


@probe
def runtime_leaves_loop_policy_alone():
    import asyncio as aio

    before = type(aio.get_event_loop_policy()).__module__
    dc.RingKernelRuntime()
    after = type(aio.get_event_loop_policy()).__module__
    return [before, after]


if __name__ == "__main__":
    only = sys.argv[2:] or list(PROBES)
    out = {}
    for name in only:
        try:
            out[name] = PROBES[name]()
        except Exception as e:  # a probe that crashes is an observation too
            out[name] = {"crashed": type(e).__name__, "detail": "".join(traceback.format_exception_only(e)).strip()}
    print(json.dumps(out))
