"""The login throttle: five failed logins for one name within a minute lock that name out for a
minute. Pure: the clock is an argument; one per console process."""

from __future__ import annotations

from dataclasses import dataclass, field

FAILURES = 5
WINDOW_SECONDS = 60.0
LOCK_SECONDS = 60.0
MAX_NAMES = 10_000
"""Names remembered at most (the oldest are forgotten first), so guessing names costs no memory."""


@dataclass
class LoginThrottle:
    failures: dict[str, list[float]] = field(default_factory=dict)
    locked_until: dict[str, float] = field(default_factory=dict)

    def locked(self, name: str, now: float) -> float:
        """Seconds ``name`` stays locked out (0 when it may try)."""
        until = self.locked_until.get(name, 0.0)
        if until <= now:
            self.locked_until.pop(name, None)
            return 0.0
        return until - now

    def failed(self, name: str, now: float) -> None:
        """A failed login for ``name``; the fifth within the window locks it."""
        recent = [t for t in self.failures.pop(name, []) if now - t < WINDOW_SECONDS] + [now]
        if len(recent) >= FAILURES:
            self.locked_until[name] = now + LOCK_SECONDS
            recent = []
        else:
            self.failures[name] = recent
        while len(self.failures) > MAX_NAMES:
            self.failures.pop(next(iter(self.failures)))
        while len(self.locked_until) > MAX_NAMES:
            self.locked_until.pop(next(iter(self.locked_until)))

    def succeeded(self, name: str) -> None:
        self.failures.pop(name, None)
