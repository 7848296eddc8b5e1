"""The coordinator's heartbeats while players serve: a node whose player hears none for a while stops
it, so no player keeps serving for a coordinator that died."""

from __future__ import annotations

import contextlib
import threading

from cleanroom.exchange.messages import heartbeat
from cleanroom.exchange.store import RunExchange

INTERVAL_SECONDS = 5.0


class Heartbeats:
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
            with contextlib.suppress(Exception):
                self._exchange.send(heartbeat(sequence), b"", self._to)
            self._stopped.wait(self._interval)
