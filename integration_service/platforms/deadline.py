"""One time budget shared by every step of an operation (a connection test answers a waiting
person and must end well inside the web server's worker timeout).

The HTTP transport asks the budget for every wait it is about to make: connect and read
timeouts, retry back-offs, a per-site slot wait. ``cap(seconds)`` is that one rule: never wait
past the end. ``check(url)`` raises the ``timeout`` PlatformError once the budget is spent.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlsplit

from .base import PlatformError


class Deadline:
    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = float(seconds)
        self._clock = clock
        self.expires_at = clock() + self.seconds

    def remaining(self) -> float:
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def cap(self, seconds: float) -> float:
        """``seconds``, or the time left when that is shorter."""
        return min(seconds, self.remaining())

    def allows(self, wait: float) -> bool:
        """Is there time to wait this long and still try again afterwards?"""
        return wait < self.remaining()

    def error(self, url: str) -> PlatformError:
        host = urlsplit(url).hostname or url
        return PlatformError(
            f"{host} did not answer within the {self.seconds:g} s allowed for the whole test.",
            stage="timeout",
            transient=True,
        )

    def check(self, url: str) -> None:
        if self.expired:
            raise self.error(url)
