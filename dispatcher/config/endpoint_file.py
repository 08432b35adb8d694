"""The file's forms an endpoint shares with ``delivery`` (a backoff: a name, a list or a mapping;
one signing secret or a list) and the models of one endpoint: :class:`EndpointFile` and its
``disable_after``. The whole file is :mod:`.model`'s; the endpoints the database holds are
validated by the same :class:`EndpointFile` (:mod:`.endpoint_records`).
"""

from dataclasses import replace
from typing import Annotated, Any, Self

from pydantic import ConfigDict, Discriminator, Field, Tag, model_validator

from . import fields as f
from . import partner
from . import settings as frozen
from .alerts import BreakerForm, breaker_value
from .checks import Problem
from .sections import Section, setting

_BACKOFF = frozen.ExponentialBackoff()
OVERRIDES = ("timeout", "connect_timeout", "max_attempts", "backoff", "breaker")
"""The delivery settings an endpoint may set for itself."""


class BackoffMapping(Section):
    """Exponential backoff, tuned: the wait before retry n is min(cap, base * multiplier ** (n - 1)),
    lengthened by a random 0 to jitter share of it (jitter never shortens a wait)."""

    model_config = ConfigDict(title="backoff mapping")

    base: f.Wait = setting(_BACKOFF.base, "Seconds before the first retry.")
    multiplier: f.Multiplier = setting(_BACKOFF.multiplier, "Each wait is this many times the one before.")
    cap: f.Wait = setting(_BACKOFF.cap, "The longest wait, in seconds; at least base.")
    jitter: f.Jitter = setting(_BACKOFF.jitter, "Lengthens each wait by a random 0 to jitter share.")

    @model_validator(mode="after")
    def _cap_reaches_base(self) -> Self:
        if self.cap < self.base:
            raise Problem(f"must be at least {{sibling}} ({self.base})", at=("cap",), sibling="base")
        return self


def _backoff_form(value: Any) -> str | None:
    if isinstance(value, str):
        return "<name>"
    if isinstance(value, list):
        return "<list>"
    return "<mapping>" if isinstance(value, dict | BackoffMapping) else None


BackoffForm = Annotated[
    Annotated[f.BackoffName, Tag("<name>")]
    | Annotated[f.WaitList, Tag("<list>")]
    | Annotated[BackoffMapping, Tag("<mapping>")],
    Discriminator(
        _backoff_form,
        custom_error_type="wrong_type",
        custom_error_message="'exponential', a list of seconds or a mapping",  # what is expected
    ),
]
"""``exponential``, a list of seconds (the last repeats), or a :class:`BackoffMapping`. The
``<tag>`` of the form taken shows in an error's ``loc``; :mod:`.problems` leaves it out."""


def _one_or_list(value: Any) -> str | None:
    return "<one>" if isinstance(value, str) else "<list>" if isinstance(value, list) else None


SigningSecrets = Annotated[
    Annotated[f.SigningSecret, Tag("<one>")] | Annotated[list[f.SigningSecret], Tag("<list>")],
    Discriminator(
        _one_or_list,
        custom_error_type="wrong_type",
        custom_error_message="a string or a list",  # what is expected
    ),
]


def backoff_value(form: str | list[int] | BackoffMapping) -> frozen.Backoff:
    """The backoff a form written in the file stands for."""
    if isinstance(form, BackoffMapping):
        return frozen.ExponentialBackoff(form.base, form.multiplier, form.cap, form.jitter)
    return frozen.ListBackoff(tuple(form)) if isinstance(form, list) else frozen.ExponentialBackoff()


class DisableAfterFile(Section):
    """Disable the endpoint after failed_deliveries failures with no success within window."""

    model_config = ConfigDict(title="disable_after")

    failed_deliveries: f.FailedDeliveries = Field(description="Failed deliveries that disable the endpoint.")
    window: f.Duration = setting(
        "5d", "With no success within: 5d, 12h, 1h30m, or seconds.", validate_default=True
    )


class EndpointFile(Section):
    """A partner endpoint: each event goes to every endpoint that subscribes to it."""

    model_config = ConfigDict(title="endpoint")

    name: f.EndpointName = Field(description="Required, unique: the CLI and the log name the endpoint by it.")
    url: f.EndpointUrl = Field(
        description="Required: http:// or https:// (https:// in production), no credentials."
    )
    key: f.Omittable[f.HeaderKey] = setting(
        None, "Sent as X-Webhook-Key; the seed's default 'xxx' when absent."
    )
    events: list[f.Event] = setting(["*"], "The events this endpoint receives; '*' for all.")
    include_key_in_body: f.Flag = setting(False, "Also send the key as metadata.webhook_key.")
    signing_secret: SigningSecrets = setting(
        [], "whsec_... or a list (rotation): Standard Webhooks signatures."
    )
    timeout: f.Omittable[f.Seconds] = setting(None, "This endpoint's delivery.timeout.")
    connect_timeout: f.Omittable[f.Seconds] = setting(None, "This endpoint's delivery.connect_timeout.")
    max_attempts: f.Omittable[f.Attempts] = setting(None, "This endpoint's delivery.max_attempts.")
    backoff: f.Omittable[BackoffForm] = setting(None, "This endpoint's delivery.backoff.")
    max_concurrency: f.Omittable[f.Concurrency] = setting(
        None, "Attempts in flight at once, across all workers."
    )
    rate_per_second: f.Omittable[f.Rate] = setting(None, "Attempts per second, across all workers.")
    disable_after: f.Omittable[DisableAfterFile] = setting(None, "Off unless set.")
    ordered: f.Flag = setting(
        False, "Deliveries of one ordering key are attempted in dispatch order, one at a time."
    )
    ordering_fields: list[f.EventField] = setting(
        list(frozen.DEFAULT_ORDERING_FIELDS),
        "With ordered: the event data fields the ordering key comes from (the first present), "
        "unless dispatch() is given ordering_key.",
    )
    headers: partner.Headers = setting(
        {}, "Extra static headers, e.g. {X-Partner-Account: clinic-17}; their values are never shown."
    )
    auth: f.Omittable[partner.AuthFile] = setting(None, "The Authorization header: basic, bearer or oauth2.")
    tls_client_cert: f.Omittable[partner.ClientCertFile] = setting(
        None, "Mutual TLS: {cert, key, key_password}."
    )
    ca_bundle: f.Omittable[f.CaBundle] = setting(
        None, "A PEM CA bundle for this partner and its token endpoint; delivery.ca_bundle otherwise."
    )
    proxy: f.Omittable[partner.ProxyUrl] = setting(
        None, "This endpoint's HTTP proxy, or none; delivery.proxy otherwise."
    )
    breaker: f.Omittable[BreakerForm] = setting(None, "This endpoint's delivery.breaker, or off.")
    propagate_trace: f.Flag = setting(
        False,
        "Adds the W3C traceparent header to the POST so the partner can join the trace; off by "
        "default: a partner sees nothing new unless asked.",
    )

    def to_endpoint(self, delivery: frozen.DeliverySettings) -> frozen.Endpoint:
        """The endpoint, its ``delivery`` the global ``delivery`` with its overrides (None without)."""
        overrides: dict[str, Any] = {k: getattr(self, k) for k in OVERRIDES if getattr(self, k) is not None}
        if "backoff" in overrides:
            overrides["backoff"] = backoff_value(overrides["backoff"])
        if "breaker" in overrides:
            overrides["breaker"] = breaker_value(overrides["breaker"])
        secrets = [self.signing_secret] if isinstance(self.signing_secret, str) else self.signing_secret
        rule = self.disable_after
        return frozen.Endpoint(
            name=self.name,
            url=self.url,
            key=frozen.DEFAULT_KEY if self.key is None else self.key,
            events=tuple(self.events),
            include_key_in_body=self.include_key_in_body,
            key_configured=self.key is not None,
            signing_secrets=tuple(secrets),
            delivery=replace(delivery, **overrides) if overrides else None,
            max_concurrency=self.max_concurrency,
            rate_per_second=self.rate_per_second,
            disable_after=frozen.DisableAfter(rule.failed_deliveries, rule.window)
            if rule is not None
            else None,
            ordered=self.ordered,
            ordering_fields=tuple(self.ordering_fields),
            headers=tuple(self.headers.items()),
            auth=self.auth.to_settings() if self.auth is not None else None,
            tls_client_cert=self.tls_client_cert.to_settings() if self.tls_client_cert else None,
            ca_bundle=self.ca_bundle,
            proxy=self.proxy,
            propagate_trace=self.propagate_trace,
        )
