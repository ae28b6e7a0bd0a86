"""Decorators: ``@ring_kernel`` (actors), ``@kernel`` / ``@gpu_kernel`` (compute kernels), and validators."""

from dotcompute.decorators.kernel import KernelRegistry, cuda_source, gpu_kernel, kernel
from dotcompute.decorators.ring_kernel import (
    RingKernelBuilder,
    get_ring_kernel_meta,
    is_ring_kernel,
    registered_kernels,
    ring_kernel,
    unregister_kernel,
)
from dotcompute.decorators.validators import (
    RuntimeValidator,
    get_validator,
    validate_backpressure_strategy,
    validate_block_size,
    validate_config,
    validate_grid_size,
    validate_message,
    validate_priority,
    validate_queue_size,
)

__all__ = [
    "ring_kernel",
    "RingKernelBuilder",
    "get_ring_kernel_meta",
    "is_ring_kernel",
    "registered_kernels",
    "unregister_kernel",
    "kernel",
    "gpu_kernel",
    "cuda_source",
    "KernelRegistry",
    "validate_message",
    "validate_config",
    "validate_queue_size",
    "validate_grid_size",
    "validate_block_size",
    "validate_priority",
    "validate_backpressure_strategy",
    "RuntimeValidator",
    "get_validator",
]
