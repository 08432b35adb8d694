"""The ``api:`` section of the file, as pydantic models: the HTTP API (``dispatcher api``) behind
a TLS proxy or not, the largest request body it reads, and each token's rate limit (a mapping,
or ``off``). Their values are :mod:`.api_settings`."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AfterValidator, ConfigDict, Discriminator, Strict, Tag, WithJsonSchema

from . import fields as f
from .api_settings import MAX_MAX_BODY_BYTES, MIN_MAX_BODY_BYTES, ApiSettings, RateLimit
from .sections import Section, setting

_DEFAULTS = ApiSettings()
_RATE = RateLimit()
MAX_BURST = 1_000_000

RequestBytes = Annotated[int, Strict(), f.Range(MIN_MAX_BODY_BYTES, MAX_MAX_BODY_BYTES, unit="byte")]
Burst = Annotated[int, Strict(), f.Range(1, MAX_BURST)]


class RateLimitFile(Section):
    """Each token's rate limit: a token bucket refilled at per_second, holding up to burst."""

    model_config = ConfigDict(title="api rate_limit")

    per_second: f.Rate = setting(_RATE.per_second, "Requests per second each token may make, on average.")
    burst: Burst = setting(_RATE.burst, "Requests a token may make at once after a quiet spell.")

    def to_settings(self) -> RateLimit:
        return RateLimit(float(self.per_second), self.burst)


def _rate_limit_form(value: Any) -> str | None:
    if value is False or value == "off":
        return "<off>"
    return "<mapping>" if isinstance(value, dict | RateLimitFile) else None


def _off(value: Any) -> bool:
    return False


RateLimitForm = Annotated[
    Annotated[Any, AfterValidator(_off), WithJsonSchema({"enum": [False, "off"]}), Tag("<off>")]
    | Annotated[RateLimitFile, Tag("<mapping>")],
    Discriminator(
        _rate_limit_form,
        custom_error_type="wrong_type",
        custom_error_message="off (false) or a mapping {per_second, burst}",
    ),
]


class ApiFile(Section):
    """The HTTP API (`dispatcher api`): how it is served, what it reads, how fast each token may go."""

    model_config = ConfigDict(title="api")

    https: f.Flag = setting(
        _DEFAULTS.https,
        "Served over https by a TLS proxy in front: lets `dispatcher api` listen beyond this machine "
        "in production.",
    )
    max_body_bytes: RequestBytes = setting(
        _DEFAULTS.max_body_bytes, "A request body longer than this is refused (413)."
    )
    rate_limit: RateLimitForm = setting(
        RateLimitFile(),
        "Each token's rate limit, shared by every API process: {per_second, burst}, or off "
        "(429 with Retry-After beyond it).",
    )

    def to_settings(self) -> ApiSettings:
        rate = self.rate_limit
        return ApiSettings(
            https=self.https,
            max_body_bytes=self.max_body_bytes,
            rate_limit=rate.to_settings() if isinstance(rate, RateLimitFile) else None,
        )
