"""The base of every section model of the file: its own keys only, each strictly of its type."""

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from .checks import UnknownSetting


def setting(default: Any, meaning: str, **more: Any) -> Any:
    """A key with its default and its meaning (the JSON Schema's description)."""
    return Field(default=default, description=meaning, **more)


class Section(BaseModel):
    """A mapping in the file: its own keys only, each strictly of its type. Frozen."""

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, raw: Any) -> Any:
        """An unknown key is named, with the keys this section has (before any other mistake)."""
        if isinstance(raw, dict):
            known = [field.alias or name for name, field in cls.model_fields.items()]
            for key in raw:
                if key not in known:
                    raise UnknownSetting(key, known)
        return raw
