"""``python -m dotcompute.bench``: the Python package's goals, measured beside
PyDotCompute (when installed) in the same run.

Cases (each run in a fresh interpreter per package and event loop, the
packages interleaved, repeated ``--repeats`` times; medians reported):

* ``roundtrip``: a PyDotCompute-style echo actor (``@message`` dataclasses,
  ``receive(timeout=0.1)`` loop); the host times ``send`` + ``receive`` of
  one message, ``--samples`` times after a warm-up: p50 and p99.
* ``stream``: ``--stream`` messages through the same actor, a producer task
  sending while a consumer task receives (pipelined): messages per second.
* ``batch`` (dotcompute only): a numpy structured array of ``--batch``
  records through a Rust kernel (the transform handler on the spin tier) with
  ``send_batch`` / ``receive_batch``: messages per second.

Goals (from the issue): round trip p50 <= 5 us, stream >= 300K msg/s,
batch >= 10M msg/s. The machine and load are printed with the figures;
on a shared machine compare the ratios within one run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from typing import Any

GOALS = {"roundtrip_p50_us": 5.0, "stream_msgs_per_s": 300_000.0, "batch_msgs_per_s": 10_000_000.0}


# ---- the measured code (runs in the worker interpreter) ------------------------


def _define(pkg: Any, kernel_id: str) -> tuple[Any, Any]:
    from dataclasses import dataclass, field
    from uuid import UUID, uuid4

    @pkg.message
    @dataclass
    class Req:
        timestamp: float
        message_id: UUID = field(default_factory=uuid4)
        priority: int = 128
        correlation_id: UUID | None = None

    @pkg.message
    @dataclass
    class Resp:
        timestamp: float
        message_id: UUID = field(default_factory=uuid4)
        priority: int = 128
        correlation_id: UUID | None = None

    @pkg.ring_kernel(kernel_id=kernel_id, queue_size=4096)
    async def echo(ctx: Any) -> None:
        while not ctx.should_terminate:
            try:
                req = await ctx.receive(timeout=0.1)
            except Exception:
                continue
            await ctx.send(Resp(timestamp=time.perf_counter(), correlation_id=req.message_id))

    return Req, Resp


async def _roundtrip(pkg: Any, samples: int) -> dict[str, float]:
    Req, _ = _define(pkg, "bench_echo")
    async with pkg.RingKernelRuntime() as rt:
        await rt.launch("bench_echo")
        await rt.activate("bench_echo")
        for _ in range(min(1000, samples)):
            await rt.send("bench_echo", Req(timestamp=0.0))
            await rt.receive("bench_echo", timeout=5)
        lat = []
        for _ in range(samples):
            t0 = time.perf_counter()
            await rt.send("bench_echo", Req(timestamp=t0))
            await rt.receive("bench_echo", timeout=5)
            lat.append(time.perf_counter() - t0)
    lat.sort()
    return {"p50_us": lat[len(lat) // 2] * 1e6, "p99_us": lat[int(len(lat) * 0.99)] * 1e6}


async def _stream(pkg: Any, n: int) -> dict[str, float]:
    import asyncio

    Req, _ = _define(pkg, "bench_stream")
    async with pkg.RingKernelRuntime() as rt:
        await rt.launch("bench_stream")
        await rt.activate("bench_stream")

        async def produce() -> None:
            for _ in range(n):
                await rt.send("bench_stream", Req(timestamp=0.0))

        async def consume() -> None:
            for _ in range(n):
                await rt.receive("bench_stream", timeout=10)

        t0 = time.perf_counter()
        await asyncio.gather(produce(), consume())
        dt = time.perf_counter() - t0
    return {"msgs_per_s": n / dt}


async def _batch(n: int) -> dict[str, float]:
    import numpy as np

    from dotcompute import RingKernelRuntime, kernels

    spec = kernels.gpu_transform(device=os.environ.get("DOTCOMPUTE_BENCH_BATCH_DEVICE", "cpu"), queue_size=65536)
    a = np.zeros(n, dtype=spec.input_dtype)
    a["seq"] = np.arange(n)
    a["value"] = np.arange(n, dtype=np.float32)
    chunk = 16384
    async with RingKernelRuntime() as rt:
        await rt.launch("bench_batch", spec)
        await rt.activate("bench_batch")
        import asyncio

        async def produce() -> None:
            for i in range(0, n, chunk):
                await rt.send_batch("bench_batch", a[i : i + chunk])

        received = 0

        async def consume() -> None:
            nonlocal received
            while received < n:
                out = await rt.receive_batch("bench_batch", chunk, timeout=30)
                received += len(out)

        t0 = time.perf_counter()
        await asyncio.gather(produce(), consume())
        dt = time.perf_counter() - t0
    return {"msgs_per_s": n / dt}


def _worker(pkg_name: str, loop: str, case: str, size: int) -> None:
    os.environ.setdefault("PYDOTCOMPUTE_NO_UVLOOP", "1")
    import asyncio
    import importlib

    pkg = importlib.import_module(pkg_name)
    coro = {
        "roundtrip": lambda: _roundtrip(pkg, size),
        "stream": lambda: _stream(pkg, size),
        "batch": lambda: _batch(size),
    }[case]()
    if loop == "uvloop":
        import uvloop

        out = uvloop.run(coro)
    else:
        out = asyncio.run(coro)
    print(json.dumps(out))


# ---- the driver ---------------------------------------------------------------------


def _run(pkg: str, loop: str, case: str, size: int) -> dict[str, float] | None:
    r = subprocess.run(
        [sys.executable, "-m", "dotcompute.bench", "--worker", pkg, loop, case, str(size)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    if r.returncode != 0:
        print(f"  {pkg}/{loop}/{case} failed: {r.stderr.strip().splitlines()[-1:] }", file=sys.stderr)
        return None
    return json.loads(r.stdout.strip().splitlines()[-1])


def _available(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        _worker(argv[1], argv[2], argv[3], int(argv[4]))
        return 0
    p = argparse.ArgumentParser(prog="python -m dotcompute.bench", description=__doc__.split("\n\n")[0])
    p.add_argument("--samples", type=int, default=20_000, help="round trips timed (default 20000)")
    p.add_argument("--stream", type=int, default=100_000, help="messages streamed (default 100000)")
    p.add_argument("--batch", type=int, default=2_000_000, help="records through the Rust kernel (default 2000000)")
    p.add_argument("--repeats", type=int, default=3, help="runs per configuration (default 3)")
    p.add_argument("--loops", default="asyncio,uvloop", help="event loops (default asyncio,uvloop)")
    p.add_argument("--no-pydotcompute", action="store_true", help="measure dotcompute only")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)

    pkgs = ["dotcompute"]
    if not args.no_pydotcompute and _available("pydotcompute"):
        pkgs.append("pydotcompute")
    loops = [l for l in args.loops.split(",") if l == "asyncio" or _available(l)]
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"load average {load[0]:.2f} at start; Python {platform.python_version()}")
    if "pydotcompute" not in pkgs:
        print("PyDotCompute is not installed: dotcompute only (pip install pydotcompute==0.2.0 to compare)")

    results: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_start": load[0], "cases": {}}
    for case, size in (("roundtrip", args.samples), ("stream", args.stream)):
        for loop in loops:
            runs: dict[str, list[dict[str, float]]] = {pkg: [] for pkg in pkgs}
            for _ in range(args.repeats):
                for pkg in pkgs:  # interleaved
                    r = _run(pkg, loop, case, size)
                    if r:
                        runs[pkg].append(r)
            for pkg in pkgs:
                if runs[pkg]:
                    med = {k: statistics.median(r[k] for r in runs[pkg]) for k in runs[pkg][0]}
                    results["cases"][f"{case}/{loop}/{pkg}"] = med
    runs_b = [r for r in (_run("dotcompute", "asyncio", "batch", args.batch) for _ in range(args.repeats)) if r]
    if runs_b:
        results["cases"]["batch/asyncio/dotcompute"] = {"msgs_per_s": statistics.median(r["msgs_per_s"] for r in runs_b)}

    c = results["cases"]
    print("\ncase                          dotcompute        PyDotCompute      ratio   goal")
    for loop in loops:
        ours, theirs = c.get(f"roundtrip/{loop}/dotcompute"), c.get(f"roundtrip/{loop}/pydotcompute")
        if ours:
            t = f"{theirs['p50_us']:8.2f} us" if theirs else "       -   "
            ratio = f"{theirs['p50_us'] / ours['p50_us']:5.1f}x" if theirs else "   - "
            ok = "met" if ours["p50_us"] <= GOALS["roundtrip_p50_us"] else "NOT met"
            print(f"round trip p50 ({loop:7s})     {ours['p50_us']:8.2f} us       {t}     {ratio}   <= 5 us: {ok}")
            t99 = f"{theirs['p99_us']:8.2f} us" if theirs else "       -   "
            print(f"round trip p99 ({loop:7s})     {ours['p99_us']:8.2f} us       {t99}")
    for loop in loops:
        ours, theirs = c.get(f"stream/{loop}/dotcompute"), c.get(f"stream/{loop}/pydotcompute")
        if ours:
            t = f"{theirs['msgs_per_s'] / 1e3:8.1f} K/s" if theirs else "       -    "
            ratio = f"{ours['msgs_per_s'] / theirs['msgs_per_s']:5.1f}x" if theirs else "   - "
            ok = "met" if ours["msgs_per_s"] >= GOALS["stream_msgs_per_s"] else "NOT met"
            print(f"stream ({loop:7s})             {ours['msgs_per_s'] / 1e3:8.1f} K/s      {t}    {ratio}   >= 300K/s: {ok}")
    if "batch/asyncio/dotcompute" in c:
        b = c["batch/asyncio/dotcompute"]["msgs_per_s"]
        ok = "met" if b >= GOALS["batch_msgs_per_s"] else "NOT met"
        print(f"numpy batch -> Rust kernel     {b / 1e6:8.2f} M/s      (no counterpart)          >= 10M/s: {ok}")
    load_end = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    results["load_end"] = load_end
    print(f"load average {load_end:.2f} at the end")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
