"""Virtual time for the local cloud: AWS waits happen instantly, and deterministically."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any, Callable

import time_machine

#: Every local cloud starts at the same instant, so runs are repeatable.
DEFAULT_START = dt.datetime(2025, 11, 28, 9, 0, 0, tzinfo=dt.timezone.utc)


class VirtualClock:
    """A clock that only moves when told to.

    While the clock runs, ``time.time()``, ``datetime.now()`` and friends return
    virtual time everywhere in the process (moto's visibility timeouts included),
    through time-machine with ``tick=False``.
    """

    def __init__(self, start: dt.datetime = DEFAULT_START) -> None:
        self.start = start
        self._traveller: Any = None
        self._coordinates: Any = None
        #: Called with each virtual minute boundary that time reaches, as it passes it
        #: (CloudWatch samples queues and evaluates alarms on these boundaries).
        self.minute_listeners: list[Callable[[float], None]] = []

    def __enter__(self) -> "VirtualClock":
        self._traveller = time_machine.travel(self.start, tick=False)
        self._coordinates = self._traveller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._traveller is not None:
            self._traveller.stop()
            self._traveller = None
            self._coordinates = None

    def now(self) -> float:
        """Virtual time as seconds since the epoch."""
        return time.time()

    @property
    def elapsed(self) -> float:
        """Virtual seconds since the cloud started."""
        return self.now() - self.start.timestamp()

    def datetime(self) -> dt.datetime:
        """Virtual time as an aware UTC datetime."""
        return dt.datetime.fromtimestamp(self.now(), tz=dt.timezone.utc)

    def advance(self, seconds: float) -> float:
        """Move virtual time forward by ``seconds``; return the new time."""
        if seconds < 0:
            raise ValueError("virtual time only moves forward; advance() takes seconds >= 0")
        if self._coordinates is None:
            raise RuntimeError("the clock is not running: use it inside `with LocalCloud...`")
        target = self.now() + seconds
        if self.minute_listeners:
            boundary = (self.now() // 60 + 1) * 60
            while boundary <= target:
                # Stop on the boundary, so that what listeners see and do happens at its time.
                self._coordinates.shift(boundary - self.now())
                for listener in list(self.minute_listeners):
                    listener(boundary)
                boundary += 60
        if target > self.now():
            self._coordinates.shift(target - self.now())
        return self.now()

    def advance_to(self, when: float) -> float:
        """Move virtual time forward to the epoch time ``when`` (never backwards)."""
        return self.advance(max(0.0, when - self.now()))
