"""``MessageQueue``: a bounded async queue with a backpressure strategy.

The Rust queue underneath keeps what PyDotCompute only documented:

* ``BLOCK`` blocks (a ``put`` waits for room; ``timeout`` bounds the wait
  with ``QueueTimeoutError``). PyDotCompute's default priority mode pushed
  past ``maxsize`` and ignored the timeout.
* ``DROP_OLDEST`` drops the *oldest message of the lowest priority band*
  (never a higher-priority one) and counts it once in ``total_dropped``.
  PyDotCompute dropped the highest-priority message, and ``put_nowait``
  counted the drop as a dequeue too.
* ``REJECT`` raises ``QueueFullError``.
* ``maxsize=0`` means unbounded (up to the runtime's limit of 2**24
  messages), in every mode (PyDotCompute's REJECT refused everything).
* every message is accounted for:
  ``total_enqueued == total_dequeued + total_dropped + current_size``.
* ``get_stats()`` also says how often a ``get`` or ``put`` had to go to
  sleep (``receive_sleeps``, ``send_sleeps``; one that found a message or
  room at once is not counted).

With ``use_priority=True`` (the default) the four priority bands of the
message's ``priority`` are served highest first, FIFO within a band;
``use_priority=False`` is strict FIFO.
"""

from __future__ import annotations

import enum
from typing import Any

from dotcompute import _native


class BackpressureStrategy(enum.Enum):
    """What a ``put`` into a full queue does."""

    BLOCK = "block"
    REJECT = "reject"
    DROP_OLDEST = "drop_oldest"


class MessageQueue(_native.Queue):
    """``MessageQueue(maxsize=4096, *, backpressure=BackpressureStrategy.BLOCK, use_priority=True, kernel_id="")``.

    ``await put(msg, timeout=None)``, ``await get(timeout=None)``,
    ``put_nowait(msg) -> bool``, ``get_nowait() -> msg | None``,
    ``clear() -> int``, ``get_stats() -> dict``; ``qsize``, ``maxsize``,
    ``empty`` and ``full`` are properties.
    """

    def __init__(
        self,
        maxsize: int = 4096,
        *,
        backpressure: BackpressureStrategy | str = BackpressureStrategy.BLOCK,
        use_priority: bool = True,
        kernel_id: str = "",
    ) -> None:
        # The Rust base class took these arguments in __new__.
        self._strategy = BackpressureStrategy(self.backpressure_name)

    @property
    def backpressure(self) -> BackpressureStrategy:
        return self._strategy

    def get_stats(self) -> dict[str, Any]:
        return self.stats()

    def __repr__(self) -> str:
        return (
            f"MessageQueue(size={self.qsize}/{self.maxsize}, backpressure={self._strategy.name}, "
            f"priority={'on' if self.use_priority else 'off'})"
        )


__all__ = ["BackpressureStrategy", "MessageQueue"]
