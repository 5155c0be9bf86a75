"""The cyclic garbage collector held back while a backend restores its state.

Restoring builds millions of objects and no garbage: the collector would walk them again and
again (measured at 1,000,000 series: 8.9 s to restore a snapshot with it, 2.0 s without), so it
waits until the end, and then they are frozen (``gc.freeze``: left out of collections) rather
than walked by the first collections after the start (1 to 2 s each, three of them in the first
seconds). They are unfrozen ``UNFREEZE_AFTER`` seconds later, so that cycles among them (a
deleted group and its series) are collected as any others. Both backends (file, Redis) use it.
"""
from __future__ import annotations

import asyncio
import gc

UNFREEZE_AFTER = 60.0  # seconds after the restore


class HeldCollector:
    """``with held:`` around a restore; ``release()`` when the backend closes."""

    def __init__(self):
        self._unfreeze: asyncio.TimerHandle | None = None

    def __enter__(self) -> "HeldCollector":
        self._collecting = gc.isenabled()
        gc.disable()
        return self

    def __exit__(self, *exc) -> None:
        gc.freeze()
        if self._collecting:
            gc.enable()
        if self._unfreeze is not None:
            self._unfreeze.cancel()
        self._unfreeze = asyncio.get_running_loop().call_later(UNFREEZE_AFTER, self._thaw)

    def _thaw(self) -> None:
        self._unfreeze = None
        gc.unfreeze()

    def release(self) -> None:
        """Unfreeze now if the timer has not yet (a closing backend leaves nothing frozen)."""
        if self._unfreeze is not None:
            self._unfreeze.cancel()
            self._thaw()
