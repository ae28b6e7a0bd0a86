"""The seeds' README quick start and PyDotCompute's three examples, changed
only in their imports, run here and print the documented results."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

SEEDS = Path(__file__).parent / "seeds"


def run(name: str) -> tuple[str, float]:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, str(SEEDS / f"{name}.py")],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    elapsed = time.perf_counter() - start
    assert out.returncode == 0, out.stderr
    return out.stdout, elapsed


def test_quick_start_prints_the_result_and_exits_at_once() -> None:
    stdout, elapsed = run("quickstart")
    assert stdout.strip() == "Result: 6.0"
    # PyDotCompute's took 10 s to exit (shutdown waited out the actor's
    # receive); generous bound for a shared machine, interpreter start included.
    assert elapsed < 5.0


def test_vector_add_example() -> None:
    stdout, _ = run("vector_add")
    for line in [
        "Received: 1.0 + 2.0 = 3.0",
        "Received: 10.5 + 20.5 = 31.0",
        "Received: -5.0 + 5.0 = 0.0",
        "Received: 0.0 + 0.0 = 0.0",
        "Received: 100.0 + 200.0 = 300.0",
        "[vector_add] Actor started",
        "[vector_add] Actor terminated",
        "Example completed successfully!",
    ]:
        assert line in stdout
    # Telemetry is recorded (PyDotCompute printed "Messages processed: 0").
    assert "Messages processed: 5" in stdout
    assert "Error" not in stdout


def test_pagerank_actor_example() -> None:
    stdout, _ = run("pagerank_actor")
    for line in [
        "Converged: True",
        "Node 0: 0.233918",
        "Node 1: 0.333333",
        "Node 2: 0.432749",
        "Large graph (100 nodes, 294 edges):",
        "Requests processed: 2",
        "[pagerank] PageRank actor terminated",
        "PageRank example completed!",
    ]:
        assert line in stdout


def test_streaming_pipeline_example() -> None:
    stdout, _ = run("streaming_pipeline")
    for line in [
        "10.0 -> normalized=0.100, score=0.010, class=low",
        "75.0 -> normalized=0.750, score=0.562, class=medium",
        "90.0 -> normalized=0.900, score=0.810, class=high",
        "150.0 -> normalized=1.000, score=1.000, class=high",
        "high: 3",
        "low: 5",
        "medium: 1",
        "normalizer: 9 messages processed",
        "scorer: 9 messages processed",
        "Pipeline example completed!",
    ]:
        assert line in stdout


def test_streaming_pipeline_parallel_part() -> None:
    code = (
        "import asyncio, sys; sys.path.insert(0, %r);"
        "import streaming_pipeline as s; asyncio.run(s.run_parallel_example())" % str(SEEDS)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for i in range(3):
        assert f"worker_{i}: value={float(i * 10)}" in out.stdout


def test_vector_add_manual_kernel() -> None:
    code = (
        "import asyncio, sys; sys.path.insert(0, %r);"
        "import vector_add as v; asyncio.run(v.run_manual_example())" % str(SEEDS)
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "Manual kernel result: 100.0" in out.stdout
