"""Ring kernels: runtime, lifecycle, messages, queues, telemetry (TEMPORARY minimal)."""
from dotcompute.ring_kernels.lifecycle import KernelContext, KernelState, RingKernel, RingKernelConfig, managed_kernel
from dotcompute.ring_kernels.message import RingKernelMessage, message
from dotcompute.ring_kernels.runtime import RingKernelRuntime
from dotcompute.ring_kernels.telemetry import GPUMonitor, RingKernelTelemetry, TelemetryCollector
