"""The alerts' settings, as values (``alerts``): the channels the people on call are reached
through (a signed webhook, an email) and the rules that say which alert goes to which channel.
The file's models are :mod:`.alerts`."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_SMTP_PORT = 587
DEFAULT_BACKLOG_SECONDS = 600
"""``queue.backlog`` without ``older_than``: the oldest queued delivery is 10 minutes old."""


@dataclass(frozen=True)
class WebhookChannel:
    """POSTs the alert as JSON, signed with Standard Webhooks headers when ``signing_secret`` is set."""

    url: str
    signing_secret: str | None = None


@dataclass(frozen=True)
class EmailChannel:
    """Sends the alert as a short plain-text mail through an SMTP server."""

    smtp_host: str
    sender: str
    """The ``from`` address."""
    to: tuple[str, ...]
    smtp_port: int = DEFAULT_SMTP_PORT
    starttls: bool = True
    username: str | None = None
    password: str | None = None


@dataclass(frozen=True)
class AlertChannel:
    name: str
    webhook: WebhookChannel | None = None
    email: EmailChannel | None = None

    @property
    def kind(self) -> str:
        return "webhook" if self.webhook is not None else "email"

    def secrets(self) -> list[str]:
        secrets = [self.webhook.signing_secret] if self.webhook and self.webhook.signing_secret else []
        if self.webhook and self.webhook.signing_secret:
            secrets.append(self.webhook.signing_secret.removeprefix("whsec_"))
        return secrets + ([self.email.password] if self.email and self.email.password else [])


@dataclass(frozen=True)
class AlertRule:
    """The alert kinds in ``events`` go to the channels in ``to``; ``delivery.failed`` at most
    every ``at_most_every_seconds`` per endpoint; ``queue.backlog`` once the oldest queued
    delivery is ``older_than_seconds`` old."""

    events: tuple[str, ...]
    to: tuple[str, ...]
    at_most_every_seconds: int | None = None
    older_than_seconds: int | None = None

    @property
    def backlog_seconds(self) -> int:
        return self.older_than_seconds or DEFAULT_BACKLOG_SECONDS


@dataclass(frozen=True)
class AlertSettings:
    channels: tuple[AlertChannel, ...] = ()
    rules: tuple[AlertRule, ...] = field(default_factory=tuple)

    def channel(self, name: str) -> AlertChannel | None:
        return next((c for c in self.channels if c.name == name), None)

    def channels_for(self, kind: str) -> list[str]:
        """The channels an alert of ``kind`` goes to, each once, in the rules' order."""
        names: list[str] = []
        for rule in self.rules:
            if kind in rule.events:
                names.extend(n for n in rule.to if n not in names)
        return names

    def rules_for(self, kind: str) -> list[AlertRule]:
        return [rule for rule in self.rules if kind in rule.events]

    def secrets(self) -> list[str]:
        return [secret for channel in self.channels for secret in channel.secrets()]
