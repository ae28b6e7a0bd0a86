"""Test configuration: async tests run with ``asyncio.run`` (no plugin needed),
on the standard event loop and, when uvloop is installed, on uvloop too.

``DOTCOMPUTE_REQUIRE_PYDOTCOMPUTE=1`` (set by scripts/test.sh) makes the
comparison tests fail instead of skipping when PyDotCompute is missing.
"""

from __future__ import annotations

import asyncio
import inspect
import itertools
import os

import pytest

try:
    import uvloop  # noqa: F401

    LOOPS = ["asyncio", "uvloop"]
except ImportError:
    LOOPS = ["asyncio"]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if inspect.iscoroutinefunction(metafunc.function):
        metafunc.fixturenames.append("event_loop_kind")
        metafunc.parametrize("event_loop_kind", LOOPS)


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    if not inspect.iscoroutinefunction(pyfuncitem.obj):
        return None
    kind = pyfuncitem.callspec.params.get("event_loop_kind", "asyncio")
    args = {name: pyfuncitem.funcargs[name] for name in pyfuncitem._fixtureinfo.argnames}
    coro = pyfuncitem.obj(**args)
    if kind == "uvloop":
        import uvloop

        uvloop.run(asyncio.wait_for(coro, 60))
    else:
        asyncio.run(asyncio.wait_for(coro, 60))
    return True


_ids = itertools.count()


@pytest.fixture
def kid() -> str:
    """A kernel id unique within the test session."""
    return f"k{next(_ids)}"


def require_pydotcompute() -> bool:
    return os.environ.get("DOTCOMPUTE_REQUIRE_PYDOTCOMPUTE") == "1"
