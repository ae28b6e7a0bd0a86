"""dotcompute (TEMPORARY minimal init)."""
from dotcompute._native import __version__
from dotcompute.decorators.ring_kernel import ring_kernel
from dotcompute.ring_kernels.message import RingKernelMessage, message
from dotcompute.ring_kernels.runtime import RingKernelRuntime
