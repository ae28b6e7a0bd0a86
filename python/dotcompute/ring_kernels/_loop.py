"""Event-loop helpers: uvloop and eager tasks, always explicit.

dotcompute works on any asyncio event loop (the standard one and uvloop).
Unlike PyDotCompute, importing it or building a runtime never changes the
process's event-loop policy or a running loop's task factory: these helpers
do that only when called. ``install_uvloop()`` respects
``DOTCOMPUTE_NO_UVLOOP`` (and PyDotCompute's ``PYDOTCOMPUTE_NO_UVLOOP``).
"""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any


def _disabled() -> bool:
    return bool(os.environ.get("DOTCOMPUTE_NO_UVLOOP") or os.environ.get("PYDOTCOMPUTE_NO_UVLOOP"))


def is_uvloop_available() -> bool:
    """Whether uvloop can be imported."""
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def is_uvloop_installed() -> bool:
    """Whether the event-loop policy is uvloop's (loops created from now on are uvloop)."""
    try:
        import uvloop
    except ImportError:
        return False
    return isinstance(asyncio.get_event_loop_policy(), uvloop.EventLoopPolicy)


def install_uvloop() -> bool:
    """Sets uvloop's event-loop policy (affects loops created afterwards).
    Returns False if uvloop is missing or disabled by the environment."""
    if _disabled() or not is_uvloop_available():
        return False
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return True


def is_eager_tasks_installed() -> bool:
    """Whether the running loop uses ``asyncio.eager_task_factory`` (Python 3.12+)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return False
    factory = getattr(asyncio, "eager_task_factory", None)
    return factory is not None and loop.get_task_factory() is factory


def install_eager_task_factory() -> bool:
    """Sets eager task creation on the running loop (Python 3.12+); False where unavailable."""
    factory = getattr(asyncio, "eager_task_factory", None)
    if factory is None:
        return False
    asyncio.get_running_loop().set_task_factory(factory)
    return True


def create_optimized_loop() -> asyncio.AbstractEventLoop:
    """A new event loop: uvloop's if available and not disabled, else asyncio's."""
    if not _disabled() and is_uvloop_available():
        import uvloop

        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def optimize_current_loop() -> bool:
    """Eager tasks on the running loop where supported (a loop cannot switch to uvloop once running)."""
    return install_eager_task_factory()


def get_loop_info() -> dict[str, Any]:
    """What loop runs now, and what is installed."""
    try:
        loop: Any = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    return {
        "loop_class": type(loop).__module__ + "." + type(loop).__name__ if loop is not None else None,
        "is_uvloop": loop is not None and type(loop).__module__.startswith("uvloop"),
        "uvloop_available": is_uvloop_available(),
        "uvloop_installed": is_uvloop_installed(),
        "eager_tasks_available": hasattr(asyncio, "eager_task_factory"),
        "eager_tasks_installed": is_eager_tasks_installed(),
        "python_version": sys.version.split()[0],
    }


__all__ = [
    "install_uvloop",
    "install_eager_task_factory",
    "is_uvloop_available",
    "is_uvloop_installed",
    "is_eager_tasks_installed",
    "get_loop_info",
    "create_optimized_loop",
    "optimize_current_loop",
]
