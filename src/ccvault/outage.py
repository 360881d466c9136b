"""One warning when a dependency goes away and one info line when it is back.

An outage fails many requests (or worker restarts) in a row; logging each would bury
the one line an operator needs, so the first failure opens the outage and the first
success closes it.
"""

from __future__ import annotations

import time

import structlog


class Outage:
    """Whether something is currently unavailable, logged once per transition."""

    def __init__(self, logger: structlog.stdlib.BoundLogger, *, down: str, up: str) -> None:
        self.log = logger
        self.down = down
        self.up = up
        self.since: float | None = None

    @property
    def active(self) -> bool:
        """True between the first failure and the next success."""
        return self.since is not None

    def begin(self, error: BaseException | str) -> None:
        """A failure: a warning if it opens an outage, nothing if one is already open."""
        if self.since is not None:
            return
        self.since = time.monotonic()
        detail = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
        self.log.warning(self.down, error=detail.strip()[:300])

    def end(self) -> None:
        """A success: an info line with the outage's length if one was open."""
        if self.since is None:
            return
        seconds = round(time.monotonic() - self.since, 2)
        self.since = None
        self.log.info(self.up, outage_seconds=seconds)
