"""Each confirmed PyDotCompute bug (reference, section 8) as a check that
dotcompute passes and PyDotCompute fails: the probes in bug_probes.py run,
unchanged, against both packages (each in its own interpreter, since
PyDotCompute changes the process's event-loop policy)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import require_pydotcompute

PROBES = Path(__file__).parent / "bug_probes.py"


def observe(package: str, *only: str) -> dict:
    out = subprocess.run([sys.executable, str(PROBES), package, *only], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def ours() -> dict:
    return observe("dotcompute")


@pytest.fixture(scope="module")
def theirs() -> dict:
    try:
        import pydotcompute  # noqa: F401
    except ImportError:
        if require_pydotcompute():
            pytest.fail("PyDotCompute is not installed (scripts/provision-python.sh installs it)")
        pytest.skip("PyDotCompute is not installed: only dotcompute's side is checked")
    return observe("pydotcompute")


# probe -> (dotcompute's correct observation, a predicate true of PyDotCompute's buggy one)
EXPECTED = {
    "telemetry_counts_messages": (20, lambda o: o == 0),
    "bogus_backpressure_is_refused": ("InvalidConfigurationError", lambda o: o == "accepted"),
    "priority_block_queue_respects_maxsize": (["raised", "QueueTimeoutError", 2], lambda o: o == ["accepted", 3]),
    "drop_oldest_keeps_high_priority": ([100, 200], lambda o: 200 not in o),
    "unbounded_reject_queue_accepts": (1, lambda o: o == "QueueFullError"),
    "drop_counted_once": ([0, 1, 1], lambda o: o[0] == 1),
    "serialize_queue_returns_messages": ("Msg", lambda o: o == "bytes"),
    "spsc_queue_full_put_loses_nothing": ([4, [0, 1, 2, 3]], lambda o: o[0] == 6 and o[1] != [0, 1, 2, 3]),
    "actor_exception_reaches_host": (["KernelFailedError", "FAILED"], lambda o: o == ["QueueTimeoutError", "ACTIVE"]),
    "deactivate_is_enforced": ("QueueTimeoutError", lambda o: o == "delivered while deactivated"),
    "threaded_receive_timeout_returns_none": (["RUNNING", None], lambda o: o != ["RUNNING", None]),
    "tier3_send_goes_to_output": ("ping", lambda o: o is None),
    "message_priority_validated": ("ValueError", lambda o: o == "accepted"),
    "message_on_dataclass_has_header": ([True, True], lambda o: o == [False, False]),
    "message_registry_collision": ("LookupError", lambda o: str(o).startswith("resolved silently")),
    "subclass_with_required_field": (1.0, lambda o: o == "TypeError"),
    "array_message_does_not_leak": (0, lambda o: o == 10),
    "unified_buffer_host_dirty_clears": ("SYNCHRONIZED", lambda o: o == "HOST_DIRTY"),
    "memory_pool_takes_arguments": ("ok", lambda o: o == "TypeError"),
    "validators_refuse_bool_and_handle_string_annotations": (
        ["InvalidConfigurationError", "InvalidConfigurationError"],
        lambda o: o[0] == "bool accepted" and o[1] != "InvalidConfigurationError",
    ),
    "telemetry_min_latency": (0, lambda o: o == 100),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dotcompute_is_right(ours: dict, name: str) -> None:
    assert ours[name] == EXPECTED[name][0]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_pydotcompute_shows_the_bug(theirs: dict, name: str) -> None:
    assert EXPECTED[name][1](theirs[name]), theirs[name]


def test_terminate_and_shutdown_do_not_wait_out_receives(ours: dict, theirs: dict) -> None:
    # Timings on a shared machine: generous bounds for us, PyDotCompute's are
    # its receive timeouts (1 s terminate timeout; 4 polling actors at 0.2 s).
    assert ours["terminate_wakes_blocked_receive"] < 0.5 <= theirs["terminate_wakes_blocked_receive"]
    assert ours["shutdown_is_concurrent"] < 0.3 < theirs["shutdown_is_concurrent"]


def test_the_runtime_leaves_the_event_loop_policy_alone(theirs: dict) -> None:
    assert observe("dotcompute", "runtime_leaves_loop_policy_alone")["runtime_leaves_loop_policy_alone"][1].startswith("asyncio")
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pytest.skip("uvloop is not installed: PyDotCompute cannot switch to it")
    before, after = observe("pydotcompute", "runtime_leaves_loop_policy_alone")["runtime_leaves_loop_policy_alone"]
    assert before.startswith("asyncio") and after.startswith("uvloop")  # despite PYDOTCOMPUTE_NO_UVLOOP=1
