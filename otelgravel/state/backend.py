"""``StateBackend``: the one interface every state backend implements (see ``__init__``)."""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Callable

from .applier import Applier
from .record import Record


class StateBackend(ABC):
    """Where records go before their push is answered.

    ``open`` restores the state (snapshot, then the log after it, each record exactly once);
    ``submit`` makes one record durable as the backend promises and applies it in log order,
    returning what the applier returned (or raising its GravelError, or ``StateUnavailable``
    when the record could not be made durable: then it was not applied either);
    ``snapshot`` folds the log into a snapshot; ``close`` writes the last one, after the
    service has answered or refused every request in flight.
    """

    applier: Applier
    problem: str = ""  # why the backend is not ready, for /-/ready's 503 ("" when none is known)
    # called with the seconds of each sync that made records durable (an fsync round, a Redis
    # append round trip); the service points it at its telemetry
    # (otelgravel_state_sync_duration_seconds)
    observe_sync: Callable[[float], None] | None = None

    @abstractmethod
    async def open(self, applier: Applier) -> None: ...

    @abstractmethod
    async def submit(self, record: Record): ...

    async def snapshot(self) -> None:
        """Nothing to fold for a backend without a log."""

    async def close(self) -> None:
        """Nothing to write for a backend without files."""

    @property
    def ready(self) -> bool:
        return True

    @property
    def available(self) -> bool:
        return True


class MemoryBackend(StateBackend):
    """Memory only (``storage.directory: ""``): apply and answer, as before the state layer."""

    def __init__(self):
        self.applier = None
        self._apply = None

    async def open(self, applier: Applier) -> None:
        self.applier = applier
        self._apply = applier.apply

    async def submit(self, record: Record):
        return self._apply(record)
