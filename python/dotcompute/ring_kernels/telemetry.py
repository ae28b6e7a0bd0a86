"""Telemetry: ``RingKernelTelemetry``, ``TelemetryCollector``, ``GPUMonitor``.

Kernel telemetry is recorded by the Rust runtime on the paths it counts
(delivery, send, handler exit, drop, restart, terminate), so an actor that
never reports anything still shows what it did. PyDotCompute's runtime never
recorded anything: its ``messages_processed`` stayed 0.

``runtime.get_telemetry(kernel_id)`` returns a snapshot: a
``RingKernelTelemetry`` with PyDotCompute's fields and methods, filled from
the runtime, plus the runtime's own figures (received, sent, rejected,
discarded, restarts, state, latency percentiles, queue statistics). Its
``record_*`` methods update the snapshot object only (for code that keeps
its own counts); ``min_latency_ns`` is ``None`` until a latency is known
(PyDotCompute used 0 as "unset", which hid a real 0 ns minimum).

``GPUMonitor`` reads NVML through the Rust device layer. Without NVML (no
driver, no GPU) ``is_available`` is False, ``unavailable_reason`` says why,
and the queries return an "N/A" ``GPUInfo`` / zeros: never an exception.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from dotcompute import _native


@dataclass
class RingKernelTelemetry:
    """A kernel's telemetry (see the module docs)."""

    kernel_id: str = ""
    messages_processed: int = 0
    messages_dropped: int = 0
    queue_depth: int = 0
    total_latency_ns: int = 0
    max_latency_ns: int = 0
    min_latency_ns: int | None = None
    error_count: int = 0
    last_error: str | None = None
    uptime_seconds: float = 0.0
    # Recorded by the runtime (not in PyDotCompute):
    state: str = ""
    messages_received: int = 0
    messages_sent: int = 0
    messages_rejected: int = 0
    messages_discarded: int = 0
    restarts: int = 0
    latency_p50_ns: int = 0
    latency_p95_ns: int = 0
    latency_p99_ns: int = 0
    queue_wait_p50_ns: int = 0
    queue_wait_p99_ns: int = 0
    #: How many messages had their latencies measured (one in the kernel's
    #: ``latency_sample_every``; the percentiles above are over these).
    latency_samples: int = 0
    output_queue_depth: int = 0
    input_queue: dict[str, Any] = field(default_factory=dict)
    output_queue: dict[str, Any] = field(default_factory=dict)
    _count: int = field(default=0, repr=False)

    @classmethod
    def from_runtime(cls, d: dict[str, Any]) -> RingKernelTelemetry:
        """A snapshot from the runtime's telemetry dict."""
        handler = d.get("handler_time", {})
        wait = d.get("queue_wait", {})
        # The runtime measures the handler time of one message in
        # `latency_sample_every` (8 by default): the total over every
        # processed message is estimated from the measured mean.
        count = d["messages_processed"] if handler.get("count", 0) else 0
        inq = d.get("input_queue", {})
        outq = d.get("output_queue", {})
        return cls(
            kernel_id=d["kernel_id"],
            messages_processed=d["messages_processed"],
            messages_dropped=d["messages_dropped"],
            queue_depth=inq.get("depth", 0),
            total_latency_ns=int(round(handler.get("mean_ns", 0.0) * count)),
            max_latency_ns=int(handler.get("max_ns", 0)),
            min_latency_ns=int(handler["min_ns"]) if count else None,
            error_count=d["errors"],
            last_error=d.get("last_error"),
            uptime_seconds=d["uptime_secs"],
            state=d.get("state", ""),
            messages_received=d["messages_received"],
            messages_sent=d["messages_sent"],
            messages_rejected=d["messages_rejected"],
            messages_discarded=d["messages_discarded"],
            restarts=d["restarts"],
            latency_p50_ns=int(handler.get("p50_ns", 0)),
            latency_p95_ns=int(handler.get("p95_ns", 0)),
            latency_p99_ns=int(handler.get("p99_ns", 0)),
            queue_wait_p50_ns=int(wait.get("p50_ns", 0)),
            queue_wait_p99_ns=int(wait.get("p99_ns", 0)),
            latency_samples=int(handler.get("count", 0)),
            output_queue_depth=outq.get("depth", 0),
            input_queue=dict(inq),
            output_queue=dict(outq),
            _count=count,
        )

    @property
    def avg_latency_ns(self) -> float:
        n = self._count or self.messages_processed
        return self.total_latency_ns / n if n else 0.0

    @property
    def avg_latency_ms(self) -> float:
        return self.avg_latency_ns / 1e6

    @property
    def throughput(self) -> float:
        """Messages processed per second of uptime."""
        return self.messages_processed / self.uptime_seconds if self.uptime_seconds > 0 else 0.0

    def record_message(self, latency_ns: int) -> None:
        self.messages_processed += 1
        self._count += 1
        self.total_latency_ns += latency_ns
        self.max_latency_ns = max(self.max_latency_ns, latency_ns)
        self.min_latency_ns = latency_ns if self.min_latency_ns is None else min(self.min_latency_ns, latency_ns)

    def record_drop(self) -> None:
        self.messages_dropped += 1

    def record_error(self, error: str) -> None:
        self.error_count += 1
        self.last_error = error

    def reset(self) -> None:
        """Zeroes every figure, keeping ``kernel_id``."""
        fresh = RingKernelTelemetry(kernel_id=self.kernel_id)
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(fresh, name))

    def to_dict(self) -> dict[str, Any]:
        d = {k: v for k, v in asdict(self).items() if not k.startswith("_")}
        d["avg_latency_ms"] = self.avg_latency_ms
        d["throughput"] = self.throughput
        return d


class TelemetryCollector:
    """Per-kernel telemetry of a runtime, refreshed from the runtime on each read."""

    def __init__(self, runtime: Any = None) -> None:
        self._runtime = runtime
        self._created = time.monotonic()
        self._kernels: dict[str, RingKernelTelemetry] = {}
        self._lock = threading.Lock()
        self.gpu_monitor = GPUMonitor()

    def register_kernel(self, kernel_id: str) -> RingKernelTelemetry:
        with self._lock:
            return self._kernels.setdefault(kernel_id, RingKernelTelemetry(kernel_id=kernel_id))

    def unregister_kernel(self, kernel_id: str) -> None:
        with self._lock:
            self._kernels.pop(kernel_id, None)

    def _refresh(self, kernel_id: str) -> RingKernelTelemetry | None:
        rt = self._runtime
        if rt is not None and kernel_id in rt.kernel_ids:
            t = RingKernelTelemetry.from_runtime(rt._telemetry(kernel_id))
            with self._lock:
                self._kernels[kernel_id] = t
            return t
        with self._lock:
            return self._kernels.get(kernel_id)

    def get_kernel_telemetry(self, kernel_id: str) -> RingKernelTelemetry | None:
        return self._refresh(kernel_id)

    def get_all_telemetry(self) -> dict[str, RingKernelTelemetry]:
        with self._lock:
            ids = list(self._kernels)
        if self._runtime is not None:
            ids = sorted(set(ids) | set(self._runtime.kernel_ids))
        out = {}
        for kid in ids:
            t = self._refresh(kid)
            if t is not None:
                out[kid] = t
        return out

    def get_summary(self) -> dict[str, Any]:
        all_t = self.get_all_telemetry()
        gpu = self.gpu_monitor.get_utilization() if self.gpu_monitor.is_available else None
        return {
            "kernel_count": len(all_t),
            "total_messages_processed": sum(t.messages_processed for t in all_t.values()),
            "total_messages_dropped": sum(t.messages_dropped for t in all_t.values()),
            "total_errors": sum(t.error_count for t in all_t.values()),
            "uptime_seconds": time.monotonic() - self._created,
            "gpu_utilization": gpu,
        }

    def reset_all(self) -> None:
        with self._lock:
            for t in self._kernels.values():
                t.reset()


@dataclass
class GPUInfo:
    """One GPU's state (``N/A`` and zeros when NVML is unavailable)."""

    index: int = 0
    name: str = "N/A"
    uuid: str = "N/A"
    memory_total: int = 0
    memory_used: int = 0
    memory_free: int = 0
    utilization_gpu: float = 0.0
    utilization_memory: float = 0.0
    temperature: float = 0.0
    power_usage: float = 0.0
    power_limit: float = 0.0

    @property
    def memory_utilization(self) -> float:
        return self.memory_used / self.memory_total if self.memory_total else 0.0


class GPUMonitor:
    """GPU state from NVML (see the module docs)."""

    def __init__(self) -> None:
        self._native = _native.GpuMonitor()

    @property
    def is_available(self) -> bool:
        return bool(self._native.is_available)

    @property
    def unavailable_reason(self) -> str | None:
        return self._native.unavailable_reason

    @property
    def device_count(self) -> int:
        return int(self._native.device_count)

    def get_gpu_info(self, index: int = 0) -> GPUInfo:
        s = self._native.sample(index) if self.is_available else None
        if not s:
            return GPUInfo(index=index)
        total = s.get("memory_total_bytes") or 0
        used = s.get("memory_used_bytes") or 0
        return GPUInfo(
            index=index,
            name=s.get("name") or "N/A",
            uuid=s.get("uuid") or "N/A",
            memory_total=total,
            memory_used=used,
            memory_free=max(total - used, 0),
            utilization_gpu=(s.get("gpu_utilization_pct") or 0) / 100.0,
            utilization_memory=(s.get("memory_utilization_pct") or 0) / 100.0,
            temperature=float(s.get("temperature_c") or 0),
            power_usage=float(s.get("power_watts") or 0.0),
            power_limit=float(s.get("power_limit_watts") or 0.0),
        )

    def get_all_gpu_info(self) -> list[GPUInfo]:
        return [self.get_gpu_info(i) for i in range(self.device_count)]

    def get_utilization(self, index: int = 0) -> float:
        return self.get_gpu_info(index).utilization_gpu

    def get_memory_info(self, index: int = 0) -> dict[str, int]:
        info = self.get_gpu_info(index)
        return {"used": info.memory_used, "free": info.memory_free, "total": info.memory_total}

    def shutdown(self) -> None:
        """Nothing to release (NVML is shared by the process); kept for compatibility."""

    def __repr__(self) -> str:
        if self.is_available:
            return f"GPUMonitor(devices={self.device_count})"
        return f"GPUMonitor(unavailable: {self.unavailable_reason})"


__all__ = ["RingKernelTelemetry", "TelemetryCollector", "GPUMonitor", "GPUInfo"]
