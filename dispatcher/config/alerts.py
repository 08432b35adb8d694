"""The ``alerts:`` section of the file and the circuit breaker's ``breaker:`` form, as pydantic
models: the channels (a signed webhook, an SMTP mail), the rules routing each alert kind to
channels by name, and an endpoint's breaker tuning (or ``off``). Their values are
:mod:`.alert_settings` and :class:`~.settings.BreakerSettings`."""

from __future__ import annotations

import re
from typing import Annotated, Any, Self

from pydantic import AfterValidator, ConfigDict, Discriminator, Field, Tag, WithJsonSchema, model_validator

from ..vocabulary import ALERT_KINDS, AlertKind
from . import alert_settings as values
from . import fields as f
from . import settings as frozen
from .checks import Problem, shown
from .sections import Section, setting

_BREAKER = frozen.BreakerSettings()
_ADDRESS = re.compile(r"^[^@\s<>]+@[^@\s<>]+$")
MAX_BREAKER_SECONDS = 86400


def _address(value: str) -> str:
    if not _ADDRESS.match(value):
        raise Problem(f"{shown(value)} is not an email address (name@host)")
    return value


def _alert_kind(value: str) -> str:
    if value not in ALERT_KINDS:
        raise Problem(f"unknown alert {shown(value)}; one of: {', '.join(ALERT_KINDS)}")
    return value


Address = Annotated[f.Required, AfterValidator(_address)]
AlertKindName = Annotated[f.Required, AfterValidator(_alert_kind)]
BreakerSeconds = Annotated[int, f.Lasting(MAX_BREAKER_SECONDS, ("30s", "10m"))]


class BreakerFile(Section):
    """The circuit breaker: opens at failure_ratio of min_attempts attempts within window."""

    model_config = ConfigDict(title="breaker")

    failure_ratio: f.Ratio = setting(
        _BREAKER.failure_ratio, "Share of retryable failures that opens it (0-1]."
    )
    min_attempts: f.Attempts = setting(_BREAKER.min_attempts, "Attempts within window before it may open.")
    window: BreakerSeconds = setting("60s", "The attempts counted: those this recent.", validate_default=True)
    open_for: BreakerSeconds = setting(
        "30s", "Open this long before one delivery probes.", validate_default=True
    )
    max_open_for: BreakerSeconds = setting(
        "10m", "A failed probe doubles open_for, up to this.", validate_default=True
    )

    @model_validator(mode="after")
    def _longest_at_least_first(self) -> Self:
        if self.max_open_for < self.open_for:
            raise Problem("must be at least {sibling}", at=("max_open_for",), sibling="open_for")
        return self

    def to_settings(self) -> frozen.BreakerSettings:
        return frozen.BreakerSettings(
            float(self.failure_ratio), self.min_attempts, self.window, self.open_for, self.max_open_for
        )


def _breaker_form(value: Any) -> str | None:
    if value is False or value == "off":
        return "<off>"
    return "<mapping>" if isinstance(value, dict | BreakerFile) else None


def _off(value: Any) -> bool:
    return False


BreakerForm = Annotated[
    Annotated[Any, AfterValidator(_off), WithJsonSchema({"enum": [False, "off"]}), Tag("<off>")]
    | Annotated[BreakerFile, Tag("<mapping>")],
    Discriminator(
        _breaker_form,
        custom_error_type="wrong_type",
        custom_error_message="off (false) or a mapping {failure_ratio, min_attempts, window, open_for, max_open_for}",
    ),
]


def breaker_value(form: bool | BreakerFile | None) -> frozen.BreakerSettings | None:
    """The breaker a form stands for: None for ``off``."""
    return form.to_settings() if isinstance(form, BreakerFile) else None


class WebhookChannelFile(Section):
    model_config = ConfigDict(title="alert webhook")

    url: f.EndpointUrl = Field(description="Where the alert is POSTed as JSON.")
    signing_secret: f.Omittable[f.SigningSecret] = setting(
        None, "whsec_...: the alert is signed with Standard Webhooks headers."
    )


class EmailChannelFile(Section):
    model_config = ConfigDict(title="alert email")

    smtp_host: f.Required = Field(description="The SMTP server.")
    smtp_port: f.Port = setting(values.DEFAULT_SMTP_PORT, "Its port.")
    starttls: f.Flag = setting(True, "Upgrade the connection with STARTTLS before logging in.")
    username: f.Omittable[f.Required] = setting(None, "Log in as this user (with password).")
    password: f.Omittable[f.Required] = setting(None, "The SMTP password; never shown.")
    sender: Address = Field(alias="from", description="The From address.")
    to: Annotated[list[Address], Field(min_length=1)] = Field(description="The recipients.")

    @model_validator(mode="after")
    def _login_whole(self) -> Self:
        if (self.username is None) != (self.password is None):
            missing = "password" if self.password is None else "username"
            raise Problem(
                "is needed with {sibling}",
                at=(missing,),
                sibling="username" if missing == "password" else "password",
            )
        return self


class AlertChannelFile(Section):
    """A channel: a name and exactly one of webhook or email."""

    model_config = ConfigDict(title="alert channel")

    name: f.EndpointName = Field(description="Required, unique: rules name the channel by it.")
    webhook: f.Omittable[WebhookChannelFile] = setting(None, "POST the alert, signed.")
    email: f.Omittable[EmailChannelFile] = setting(None, "Mail the alert.")

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.webhook is None) == (self.email is None):
            raise Problem("needs exactly one of webhook or email")
        return self

    def to_settings(self) -> values.AlertChannel:
        webhook = self.webhook
        email = self.email
        return values.AlertChannel(
            self.name,
            webhook=values.WebhookChannel(webhook.url, webhook.signing_secret) if webhook else None,
            email=values.EmailChannel(
                email.smtp_host,
                email.sender,
                tuple(email.to),
                email.smtp_port,
                email.starttls,
                email.username,
                email.password,
            )
            if email
            else None,
        )


class AlertRuleFile(Section):
    model_config = ConfigDict(title="alert rule")

    events: Annotated[list[AlertKindName], Field(min_length=1)] = Field(description="The alert kinds.")
    to: Annotated[list[f.EndpointName], Field(min_length=1)] = Field(description="The channels, by name.")
    at_most_every: f.Omittable[f.Duration] = setting(
        None, "delivery.failed: at most one alert per endpoint this often (failures grouped)."
    )
    older_than: f.Omittable[f.Duration] = setting(
        None, "queue.backlog: when the oldest queued delivery is this old (10m by default)."
    )

    def to_settings(self) -> values.AlertRule:
        return values.AlertRule(tuple(self.events), tuple(self.to), self.at_most_every, self.older_than)


class AlertsFile(Section):
    """Who is told when an endpoint goes down, deliveries fail, the queue stalls or no worker is alive."""

    model_config = ConfigDict(title="alerts")

    channels: list[AlertChannelFile] = setting([], "Where alerts go: {name, webhook} or {name, email}.")
    rules: list[AlertRuleFile] = setting([], "Which alerts go to which channels.")

    @model_validator(mode="after")
    def _names(self) -> Self:
        names: set[str] = set()
        for i, channel in enumerate(self.channels):
            if channel.name in names:
                raise Problem(f"duplicate channel name {shown(channel.name)}", at=("channels", i, "name"))
            names.add(channel.name)
        for i, rule in enumerate(self.rules):
            for j, name in enumerate(rule.to):
                if name not in names:
                    known = ", ".join(sorted(names)) or "none"
                    raise Problem(
                        f"no channel is named {shown(name)} (channels: {known})", at=("rules", i, "to", j)
                    )
        return self

    def to_settings(self) -> values.AlertSettings:
        return values.AlertSettings(
            tuple(c.to_settings() for c in self.channels), tuple(r.to_settings() for r in self.rules)
        )


__all__ = ["AlertKind", "AlertsFile", "BreakerFile", "BreakerForm", "breaker_value"]
