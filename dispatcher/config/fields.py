"""The types of the settings, as pydantic annotations: the type, its bounds, its checks.

Every string is strict (a YAML ``123`` is not a name) and valid text (:func:`.checks.unicode_text`);
every number is strict (``true`` and ``"30"`` are not numbers) and bounded above as well as below,
so no setting can carry a number that breaks something further on: a 32-bit database column, a
``timedelta``, RQ's job timeout, ``multiplier ** attempts`` in the backoff. The bounds are here,
named, and an error quotes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from pydantic import (
    AfterValidator,
    AllowInfNan,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    Strict,
    ValidatorFunctionWrapHandler,
    WithJsonSchema,
)
from pydantic_core import CoreSchema, core_schema

from ..vocabulary import EVENT_NAMES
from . import checks
from .checks import Problem, shown
from .settings import MAX_WORKER_THREADS

MAX_TIMEOUT_SECONDS = 600
"""``timeout`` and ``connect_timeout``: RQ's job timeout is twice their sum plus two minutes, and
reconcile waits that long before it repairs a stranded delivery."""
MAX_ATTEMPTS = 100
"""``max_attempts``: ``multiplier ** (attempt - 1)`` stays a float (10 ** 99) and a delivery's
attempts stay a readable log."""
MAX_WAIT_SECONDS = 7 * 86400
"""The longest wait before a retry (``backoff`` seconds, ``base`` and ``cap``): a week."""
MAX_MULTIPLIER = 10
MAX_BODY_BYTES = 16 * 1024 * 1024
"""``max_payload_bytes`` and ``response_body_limit``: 16 MiB, far beyond any webhook."""
MAX_CONCURRENCY = 10_000
MAX_RATE_PER_SECOND = 10_000
MAX_FAILED_DELIVERIES = 1_000_000
MAX_WINDOW_SECONDS = 365 * 86400
MAX_IDEMPOTENCY_SECONDS = 30 * 86400
"""``idempotency_ttl``: 30 days."""
MAX_RETENTION_DAYS = 36500
"""A hundred years of process log files (further back than a date can go, every line failed)."""
MAX_PORT = 65535

T = TypeVar("T")


@dataclass(frozen=True)
class Range:
    """A number's bounds: checked with one message naming them, and the JSON Schema's ``minimum``
    (``exclusiveMinimum`` when ``above``) and ``maximum``. ``meaning`` replaces "at least L" /
    "at most H" in the message ("a port number 1-65535"); ``unit`` follows a bound ("second")."""

    low: int
    high: int
    above: bool = False
    meaning: str | None = None
    unit: str = ""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_wrap_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        json_schema = handler(schema)
        json_schema["exclusiveMinimum" if self.above else "minimum"] = self.low
        json_schema["maximum"] = self.high
        return json_schema

    def check(self, given: Any, validate: ValidatorFunctionWrapHandler) -> Any:
        """The value once of its type, if within bounds; the problem quotes it as written."""
        value = validate(given)
        if value <= self.low if self.above else value < self.low:
            bound = (
                f"greater than {self._count(self.low)}" if self.above else f"at least {self._count(self.low)}"
            )
        elif value > self.high:
            bound = f"at most {self._count(self.high)}"
        else:
            return value
        raise Problem(f"must be {self.meaning or bound}, got {shown(given)}")

    def _count(self, number: int) -> str:
        return f"{number} {self.unit}{'' if number == 1 else 's'}" if self.unit else str(number)


@dataclass(frozen=True)
class NotEmpty:
    """A list that must hold something: the JSON Schema's ``minItems: 1``, and ``problem`` when
    it is empty."""

    problem: str

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        json_schema = handler(schema)
        json_schema["minItems"] = 1
        return json_schema

    def check(self, value: list[Any]) -> list[Any]:
        if not value:
            raise Problem(self.problem)
        return value


_DURATION_PATTERN = r"^\s*(\d+(\.\d+)?|(\d+(\.\d+)?\s*[smhdw]\s*)+)\s*$"
"""A duration written as text (:func:`dispatcher.times.parse_duration` reads it)."""


@dataclass(frozen=True)
class Lasting:
    """A length of time of at most ``longest`` seconds, written as seconds or as ``45s``, ``30m``,
    ``12h``, ``5d``, ``2w`` and combinations (:func:`.checks.duration_seconds`): checked, and the
    JSON Schema's two forms with their ``examples``."""

    longest: int
    examples: tuple[str, ...]

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_plain_validator_function(self.check)

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        return {
            "anyOf": [
                {"type": "string", "pattern": _DURATION_PATTERN},
                {"type": "integer", "minimum": 1, "maximum": self.longest},
            ],
            "examples": list(self.examples),
        }

    def check(self, value: object) -> int:
        return checks.duration_seconds(value, self.longest)


class Hint:
    """Adds to the JSON Schema only (for an editor's completion and checks); validates nothing."""

    def __init__(self, **extra: Any) -> None:
        self.extra = extra

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> Any:
        json_schema = handler(schema)
        json_schema.update(self.extra)
        return json_schema


class _NotNull:
    """Drops ``None`` from ``X | None``: the setting may be left out (it is None then), but a
    ``null`` written in the file is refused as not an X."""

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        schema = handler(source)
        return schema["schema"] if schema["type"] == "nullable" else schema


Omittable = Annotated[T | None, _NotNull()]
"""A setting that may be left out (None), but not written as ``null``."""


Text = Annotated[str, Strict(), AfterValidator(checks.unicode_text)]
"""Every string setting: a string, and valid text."""
Required = Annotated[Text, AfterValidator(checks.not_blank), Hint(minLength=1)]
"""Text that must not be empty or only spaces."""
RedisUrl = Annotated[
    Required,
    AfterValidator(checks.redis_url),
    Hint(
        examples=[
            "redis://127.0.0.1:6379/0",
            "rediss://cache:6380/0",
            "redis+sentinel://10.0.0.5:26379,10.0.0.6:26379,10.0.0.7:26379/mymaster/0",
        ]
    ),
]
DatabaseUrl = Annotated[
    Required,
    AfterValidator(checks.database_url),
    Hint(examples=["sqlite:///storage/webhooks.db", "postgresql+psycopg://user:password@host:5432/webhooks"]),
]
EndpointName = Annotated[Text, AfterValidator(checks.endpoint_name), Hint(minLength=1)]
EndpointUrl = Annotated[
    Text,
    AfterValidator(checks.endpoint_url),
    Hint(format="uri", examples=["https://partner.example.com/webhooks"]),
]
HeaderKey = Annotated[
    Text, AfterValidator(checks.header_key), Hint(pattern=r"^[\x21-\x7e]([\x20-\x7e]*[\x21-\x7e])?$")
]
SigningSecret = Annotated[
    Text, AfterValidator(checks.signing_secret), Hint(pattern=r"^whsec_[A-Za-z0-9+/]+={0,2}$")
]
StorageKey = Annotated[Text, AfterValidator(checks.storage_key), Hint(pattern=r"^[A-Za-z0-9_-]{43}=$")]
SearchKey = Annotated[
    Text,
    AfterValidator(checks.search_key),
    Hint(minLength=checks.SEARCH_KEY_MIN_CHARS, pattern=r"^[\x20-\x7e]+$"),
]
Network = Annotated[Text, AfterValidator(checks.network), Hint(examples=["127.0.0.0/8", "::1/128"])]
CaBundle = Annotated[Text, AfterValidator(checks.existing_file)]
BackoffName = Annotated[Text, AfterValidator(checks.backoff_name), WithJsonSchema({"const": "exponential"})]
Event = Annotated[
    Text,
    AfterValidator(checks.known_event),
    WithJsonSchema({"type": "string", "enum": ["*", *EVENT_NAMES]}),
]
Flag = Annotated[bool, Strict()]
EventField = Annotated[Text, AfterValidator(checks.event_field)]

_Number = Annotated[float, Strict(), AllowInfNan(False)]
_Integer = Annotated[int, Strict()]

Seconds = Annotated[_Number, Range(0, MAX_TIMEOUT_SECONDS, above=True)]
Attempts = Annotated[_Integer, Range(0, MAX_ATTEMPTS, above=True)]
BodyBytes = Annotated[_Integer, Range(0, MAX_BODY_BYTES, above=True)]
Status4xx = Annotated[_Integer, Range(400, 499, meaning="a 4xx status code")]
WaitSeconds = Annotated[_Integer, Range(1, MAX_WAIT_SECONDS, unit="second")]
WaitList = Annotated[list[WaitSeconds], NotEmpty("the list of seconds is empty")]
Wait = Annotated[_Number, Range(0, MAX_WAIT_SECONDS, above=True)]
Multiplier = Annotated[_Number, Range(1, MAX_MULTIPLIER)]
Jitter = Annotated[_Number, Range(0, 1, meaning="between 0 and 1")]
Ratio = Annotated[_Number, Range(0, 1, above=True, meaning="greater than 0 and at most 1")]
Concurrency = Annotated[_Integer, Range(0, MAX_CONCURRENCY, above=True)]
Rate = Annotated[_Number, Range(0, MAX_RATE_PER_SECOND, above=True)]
FailedDeliveries = Annotated[_Integer, Range(0, MAX_FAILED_DELIVERIES, above=True)]
RetentionDays = Annotated[_Integer, Range(0, MAX_RETENTION_DAYS, above=True)]
KeepDays = Annotated[_Integer, Range(0, MAX_RETENTION_DAYS, above=True, unit="day")]
Port = Annotated[_Integer, Range(1, MAX_PORT, meaning=f"a port number 1-{MAX_PORT}")]
Threads = Annotated[_Integer, Range(1, MAX_WORKER_THREADS, meaning=f"between 1 and {MAX_WORKER_THREADS}")]
PortRange = Annotated[_Integer, Range(1, MAX_PORT, meaning=f"at least 1 and end at port {MAX_PORT} or below")]


Ttl = Annotated[int, Lasting(MAX_IDEMPOTENCY_SECONDS, ("24h", "7d"))]
"""How long an idempotency key is remembered: at most 30 days."""
Duration = Annotated[int, Lasting(MAX_WINDOW_SECONDS, ("5d", "12h", "1h 30m"))]
"""A length of time: seconds, or ``45s``, ``30m``, ``12h``, ``5d``, ``2w`` and combinations."""
