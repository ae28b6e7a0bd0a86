"""Built-in Rust kernels from Python, with numpy batches."""

from __future__ import annotations

import asyncio

import numpy as np
import pytest

from dotcompute import RingKernelRuntime, kernels
from dotcompute.exceptions import QueueTimeoutError


def samples(dtype, n: int) -> np.ndarray:
    a = np.zeros(n, dtype=dtype)
    a["seq"] = np.arange(n)
    a["value"] = np.arange(n, dtype=np.float32) * 0.5
    a["channel"] = 7
    return a


async def collect(rt, kid, n):
    out = []
    while sum(len(x) for x in out) < n:
        out.append(await rt.receive_batch(kid, n, timeout=10))
    return np.concatenate(out)


def test_record_dtypes_come_from_the_c_declarations() -> None:
    spec = kernels.gpu_transform()
    assert spec.input_dtype.names == ("seq", "value", "channel") and spec.input_dtype.itemsize == 16
    assert spec.output_dtype.names == ("seq", "channel", "value", "squared", "reserved")
    assert spec.output_dtype.fields["value"][1] == 12 and spec.output_dtype.itemsize == 24
    stats = kernels.gpu_running_stats().output_dtype
    assert stats.itemsize == 48 and stats.fields["window_len"][1] == 44


@pytest.mark.parametrize("device", ["cpu", "cpu-spin", "emulated"])
async def test_transform_kernel_on_each_device(device: str) -> None:
    spec = kernels.gpu_transform(device=device)
    async with RingKernelRuntime() as rt:
        await rt.launch("tf", spec)
        await rt.activate("tf")
        a = samples(spec.input_dtype, 3000)
        await rt.send_batch("tf", a)
        out = await collect(rt, "tf", 3000)
        assert np.array_equal(out["seq"], a["seq"])
        assert np.allclose(out["value"], 2 * a["value"] + 1) and np.allclose(out["squared"], a["value"] ** 2)
        one = await rt.send_and_receive("tf", a[2], timeout=10)
        assert one["value"] == 3.0
        with pytest.raises(TypeError):
            await rt.send_batch("tf", np.zeros(3, dtype=np.float64))  # wrong dtype: refused


@pytest.mark.parametrize("device", ["cpu", "cpu-spin"])
async def test_cpu_tiers_move_blocks_and_keep_order_across_partial_receives(device: str) -> None:
    # 10,000 records cross as three blocks (at most 4096 records each); receives
    # smaller than a block keep the rest for the next receive, in order.
    spec = kernels.gpu_transform(device=device)
    async with RingKernelRuntime() as rt:
        await rt.launch("blk", spec)
        await rt.activate("blk")
        a = samples(spec.input_dtype, 10_000)
        await rt.send_batch("blk", a)
        first = await rt.receive("blk", timeout=10)
        assert first["seq"] == 0 and first["value"] == 1.0
        parts = [await rt.receive_batch("blk", 777, timeout=10)]
        assert len(parts[0]) == 777
        assert len(await rt.receive_batch("blk", 0, timeout=10)) == 0
        parts.append(await collect(rt, "blk", 10_000 - 1 - 777))
        out = np.concatenate(parts)
        assert np.array_equal(out["seq"], a["seq"][1:])
        assert np.allclose(out["value"], 2 * a["value"][1:] + 1)
        with pytest.raises(QueueTimeoutError) as e:
            await rt.receive("blk", timeout=0.05)  # nothing left over, nothing lost
        assert (e.value.kernel_id, e.value.timeout, e.value.operation) == ("blk", 0.05, "receive")
        with pytest.raises(QueueTimeoutError) as e:
            await rt.receive_batch("blk", 10, timeout=0.05)
        assert (e.value.kernel_id, e.value.operation) == ("blk", "receive")
        # The queues count blocks. The kernel counts a block processed once it
        # is back for the next one, a moment after the reply: wait for it.
        for _ in range(500):
            if rt.get_telemetry("blk").messages_processed >= 3:
                break
            await asyncio.sleep(0.01)
        assert rt.get_telemetry("blk").messages_processed == 3


async def test_running_stats_keep_state_on_the_device() -> None:
    spec = kernels.gpu_running_stats(device="emulated")
    async with RingKernelRuntime() as rt:
        await rt.launch("rs", spec)
        await rt.activate("rs")
        a = samples(spec.input_dtype, 100)
        await rt.send_batch("rs", a)
        out = await collect(rt, "rs", 100)
        assert out["count"][-1] == 100
        assert out["mean"][-1] == pytest.approx(a["value"].astype(np.float64).mean())


async def test_cuda_device_or_a_clear_error() -> None:
    from dotcompute import Accelerator

    spec = kernels.gpu_echo(device="cuda")
    async with RingKernelRuntime() as rt:
        if not Accelerator().cuda_available:
            with pytest.raises(Exception) as e:
                await rt.launch("cu", spec)
                await rt.activate("cu")
                await rt.send_and_receive("cu", samples(spec.input_dtype, 1)[0], timeout=10)
            assert "CUDA" in str(e.value) or "cuda" in str(e.value)
        else:
            await rt.launch("cu", spec)
            await rt.activate("cu")
            a = samples(spec.input_dtype, 1000)
            await rt.send_batch("cu", a)
            assert np.array_equal(await collect(rt, "cu", 1000), a)


@pytest.mark.parametrize("tier", ["async", "thread", "spin"])
async def test_anomaly_detector(tier: str) -> None:
    x = np.sin(np.arange(20_000) / 25.0)
    x[[5_000, 12_345]] += 40.0
    async with RingKernelRuntime() as rt:
        await rt.launch("ad", kernels.anomaly_detector(window=500, tier=tier, batch_size=1000))
        await rt.activate("ad")
        await rt.send_batch("ad", x)
        results = [await rt.receive("ad", timeout=10) for _ in range(20)]
        with pytest.raises(QueueTimeoutError) as e:  # 20 batches, 20 results: none more
            await rt.receive("ad", timeout=0.05)
        assert (e.value.kernel_id, e.value.timeout, e.value.operation) == ("ad", 0.05, "receive")
    found = sorted(i for r in results for i in r["indices"].tolist())
    assert 5_000 in found and 12_345 in found
    assert results[-1]["seen"] == 20_000 and all(r["error"] is None for r in results)


async def test_pagerank_kernel() -> None:
    async with RingKernelRuntime() as rt:
        await rt.launch("pr", kernels.pagerank())
        await rt.activate("pr")
        r = await rt.send_and_receive("pr", {"op": "set_graph", "src": [0, 1, 2, 2, 0], "dst": [1, 2, 0, 1, 2]}, timeout=10)
        assert r == {"nodes": 3, "edges": 5}
        assert (await rt.send_and_receive("pr", {"op": "recompute"}, timeout=10))["converged"]
        top = (await rt.send_and_receive("pr", {"op": "top_k", "k": 3}, timeout=10))["top"]
        # The seeds' pagerank example computes 0.432749 / 0.333333 / 0.233918.
        assert [n for n, _ in top] == [2, 1, 0]
        assert top[0][1] == pytest.approx(0.432749, abs=1e-5)
        with pytest.raises(ValueError):
            await rt.send("pr", {"op": "bogus"})
