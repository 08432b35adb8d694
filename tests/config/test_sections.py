"""The base of every section model: its own keys only, each strictly of its type, frozen."""

import pytest
from pydantic import ValidationError

from dispatcher.config.checks import UnknownSetting
from dispatcher.config.sections import Section, setting


class Sample(Section):
    count: int = setting(1, "How many.")
    name: str = setting("a", "Its name.")


def test_an_unknown_key_is_named_with_the_keys_the_section_has() -> None:
    with pytest.raises(ValidationError) as caught:
        Sample.model_validate({"cuont": 2})
    cause = caught.value.errors()[0]["ctx"]["error"]
    assert isinstance(cause, UnknownSetting)
    assert cause.key == "cuont"
    assert "expected one of: count, name" in str(cause)


def test_a_value_of_another_type_is_refused_not_converted() -> None:
    with pytest.raises(ValidationError):
        Sample.model_validate({"count": "2"})


def test_a_setting_carries_its_default_and_meaning_and_the_section_is_frozen() -> None:
    sample = Sample()
    assert (sample.count, Sample.model_fields["count"].description) == (1, "How many.")
    with pytest.raises(ValidationError):
        sample.count = 3
