"""The coordinator's heartbeats for the whole run: a node that hears none for a while stops waiting and
stops its player, so nothing keeps serving or waiting for a coordinator that died."""

from __future__ import annotations

import contextlib
import threading
import time

from cleanroom.errors import CleanroomError, PartyUnavailableError
from cleanroom.exchange.messages import heartbeat, heartbeats
from cleanroom.exchange.store import RunExchange

INTERVAL_SECONDS = 5.0


class Heartbeats:
    """The coordinator's side: one small sealed object every few seconds, written once each."""

    def __init__(self, exchange: RunExchange, to: list[str], interval: float = INTERVAL_SECONDS) -> None:
        self._exchange, self._to, self._interval = exchange, to, interval
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="coordinator-heartbeats", daemon=True)

    def __enter__(self) -> Heartbeats:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join(timeout=10)

    def _beat(self) -> None:
        sequence = 0
        while not self._stopped.is_set():
            sequence += 1
            with contextlib.suppress(CleanroomError):  # a missed beat: nodes tolerate silence up to their limit
                self._exchange.send(heartbeat(sequence), b"", self._to)
            self._stopped.wait(self._interval)


class CoordinatorWatch:
    """A node's side: why to stop now, if the run was closed or the coordinator fell silent. It looks
    at the exchange at most every LOOK_SECONDS (a waiting step calls it often; every look is a request)."""

    LOOK_SECONDS = INTERVAL_SECONDS

    def __init__(self, exchange: RunExchange, silence: float) -> None:
        self._exchange, self._silence = exchange, silence
        self._beats, self._last_sign, self._last_look = 0, time.monotonic(), 0.0
        self._problem: CleanroomError | None = None

    def __call__(self) -> CleanroomError | None:
        now = time.monotonic()
        if self._problem is None and now - self._last_look >= self.LOOK_SECONDS:
            self._last_look = now
            self._problem = self._exchange.closed()
            count = len(self._exchange.names(heartbeats()))
            if count > self._beats:
                self._beats, self._last_sign = count, now
        if self._problem is None and now - self._last_sign > self._silence:
            self._problem = PartyUnavailableError(
                f"no heartbeat from the coordinator for {self._silence:.0f} s",
                where=f"run {self._exchange.run_id}",
            )
        return self._problem
