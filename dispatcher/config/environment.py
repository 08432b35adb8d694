"""The ``DISPATCHER_*`` environment variables that override the file, read with pydantic-settings.

``DISPATCHER_REDIS_URL``, ``DISPATCHER_DATABASE_URL``, ``DISPATCHER_STORAGE_KEYS`` (keys
separated by commas) and ``DISPATCHER_SEARCH_KEY``. Each overrides the setting it is named after (``redis_url``), with that
setting's type and checks; it wins over the file, whose value it replaces unchecked; an empty
variable is ignored. A mistake names the setting and the
variable: ``config: redis_url: expected a redis:// URL, got 'http://cache' (set by
DISPATCHER_REDIS_URL)``.

Adding a variable: a field of :class:`Overrides` named as the setting (the variable is
:data:`PREFIX` + its name in capitals), and the setting in the file's model and in ``Settings``.
A list is one comma-separated variable: type it :data:`CommaSeparated` with a default
(``storage_keys: CommaSeparated = ()``; ``DISPATCHER_STORAGE_KEYS=k1,k2`` gives ``("k1", "k2")``).
"""

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, ValidationError
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict

from . import fields as f
from .problems import config_error

PREFIX = "DISPATCHER_"


class _Commas:
    """Marks a list read from one variable as comma-separated text (pydantic-settings would
    read it as JSON)."""


def _split(value: object) -> object:
    return (
        tuple(part.strip() for part in value.split(",") if part.strip()) if isinstance(value, str) else value
    )


CommaSeparated = Annotated[tuple[f.Text, ...], _Commas, BeforeValidator(_split)]
"""A list of strings, from ``a,b,c`` (spaces around each cut, empty parts dropped)."""


class Overrides(BaseSettings):
    """The settings the environment may set."""

    model_config = SettingsConfigDict(
        env_prefix=PREFIX, env_ignore_empty=True, extra="ignore", frozen=True, strict=True
    )

    redis_url: f.RedisUrl | None = Field(default=None, description="DISPATCHER_REDIS_URL")
    database_url: f.DatabaseUrl | None = Field(default=None, description="DISPATCHER_DATABASE_URL")
    storage_keys: CommaSeparated = Field(default=(), description="DISPATCHER_STORAGE_KEYS, comma-separated")
    search_key: f.SearchKey | None = Field(default=None, description="DISPATCHER_SEARCH_KEY")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Only the values given: :func:`read_overrides` reads the variables, from the mapping
        it is handed, through :class:`_Variables`; validating must not read ``os.environ`` again
        (its own JSON decoding would refuse a comma-separated list)."""
        return (init_settings,)


class _Variables(EnvSettingsSource):
    """pydantic-settings' environment source, reading the mapping it is given (``os.environ``
    unless a caller passes another) instead of ``os.environ`` itself."""

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]) -> None:
        super().__init__(settings_cls)
        self.env_vars = {  # as the source reads os.environ, but only names in capitals, as ever
            name if self.case_sensitive else name.lower(): value
            for name, value in env.items()
            if name == name.upper() and not (self.env_ignore_empty and value == "")
        }

    def decode_complex_value(self, field_name: str, field: FieldInfo, value: Any) -> Any:
        if _Commas in field.metadata:
            return value
        return super().decode_complex_value(field_name, field, value)


def variable(setting: str) -> str:
    """The variable that overrides ``setting``: ``redis_url`` -> ``DISPATCHER_REDIS_URL``."""
    return f"{PREFIX}{setting.upper()}"


def read_overrides(env: Mapping[str, str], model: type[Overrides] = Overrides) -> dict[str, Any]:
    """The settings ``env`` sets, by name, checked (``model`` differs only in tests).

    Raises:
        ConfigError: naming the setting and the variable.
    """
    values = _Variables(model, env)()
    try:
        overrides = model.model_validate(values)
    except ValidationError as exc:
        raise config_error(exc, {name: variable(name) for name in values}) from None
    return overrides.model_dump(mode="json", exclude_unset=True)
