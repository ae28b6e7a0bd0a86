"""Built-in Rust kernels, launched from Python: ``await runtime.launch(id, spec)``.

These run entirely in Rust (no Python per message), so batches of numpy
data go through them at Rust speed:

* ``gpu_echo``, ``gpu_transform``, ``gpu_running_stats``: GPU ring-kernel
  handlers whose messages are ``GpuMessage`` records, exchanged as numpy
  structured arrays (``spec.input_dtype`` / ``spec.output_dtype``, derived
  from the types' C declarations). ``device="cuda"`` runs the persistent CUDA
  kernel on an NVIDIA GPU; ``"emulated"`` runs the same ring protocol with a
  host thread playing the device (emulation, not a GPU); ``"cpu"`` /
  ``"cpu-spin"`` run the handler on a kernel thread (thread / spin tier).
* ``anomaly_detector``: the streaming EMA z-score detector; send 1-D float
  arrays (``send_batch`` splits them in ``batch_size`` batches), receive dicts
  of numpy arrays (``indices``, ``values``, ``scores``) and the detector state.
* ``pagerank``: a kernel holding a graph; requests are dicts
  (``{"op": "set_graph", "src": .., "dst": ..}``, ``{"op": "recompute"}``,
  ``{"op": "top_k", "k": 5}``, ...).

``runtime.send_batch(id, array)`` / ``runtime.receive_batch(id, n)`` move a
whole numpy array per call.
"""

from __future__ import annotations

from typing import Any

from dotcompute import _native


class BuiltinKernel:
    """A built-in kernel's definition (pass it to ``runtime.launch``)."""

    def __init__(self, kind: str, **options: Any) -> None:
        self.kind = kind
        self.options = options
        if kind in ("echo", "transform", "running_stats"):
            self.input_dtype, self.output_dtype = _native.record_dtypes(kind)
        else:
            self.input_dtype = self.output_dtype = None

    def _dotcompute_launch(self, runtime: Any, kernel_id: str) -> None:
        runtime._launch_builtin(kernel_id, self.kind, **self.options, info={"kind": self.kind, **self.options})

    def __repr__(self) -> str:
        return f"BuiltinKernel({self.kind!r}, {self.options})"


def _record(kind: str, device: str, queue_size: int) -> BuiltinKernel:
    return BuiltinKernel(kind, device=device, queue_size=queue_size)


def gpu_echo(device: str = "emulated", queue_size: int = 4096) -> BuiltinKernel:
    """``Sample`` records back unchanged."""
    return _record("echo", device, queue_size)


def gpu_transform(device: str = "emulated", queue_size: int = 4096) -> BuiltinKernel:
    """``Sample`` → ``Scaled`` (``2 * value + 1`` and ``value ** 2``)."""
    return _record("transform", device, queue_size)


def gpu_running_stats(device: str = "emulated", queue_size: int = 4096) -> BuiltinKernel:
    """``Sample`` → ``Stats`` (count, mean, variance, 16-value window), state kept in the kernel."""
    return _record("running_stats", device, queue_size)


def anomaly_detector(
    window: int = 10_000, threshold: float = 3.0, tier: str = "thread", batch_size: int = 1024, queue_size: int = 4096
) -> BuiltinKernel:
    """The streaming anomaly detector (state kept in the kernel across batches)."""
    return BuiltinKernel(
        "anomaly", window=window, threshold=threshold, tier=tier, batch_size=batch_size, queue_size=queue_size
    )


def pagerank() -> BuiltinKernel:
    """PageRank on a graph held by the kernel."""
    return BuiltinKernel("pagerank")


__all__ = ["BuiltinKernel", "gpu_echo", "gpu_transform", "gpu_running_stats", "anomaly_detector", "pagerank"]
