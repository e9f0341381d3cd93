"""Durations in settings: any value given for a duration is a ``Settings`` whose
policies build, or a ``ValidationError`` (one sentence per problem), never another
exception. Found by this suite: a duration of millions of days passed validation and
then overflowed (``OverflowError``) while the policies were built."""

from __future__ import annotations

import typing
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from tests.properties.strategies import PROPERTIES
from velvetrope.settings import MAX_DURATION, Settings, describe_validation_error


def _is_duration(annotation: Any) -> bool:
    """``timedelta``, possibly optional (``Duration | None``) or ``Annotated``."""
    if annotation is timedelta:
        return True
    return any(_is_duration(arg) for arg in typing.get_args(annotation))


DURATIONS = sorted(n for n, f in Settings.model_fields.items() if _is_duration(f.annotation))

iso = st.builds(
    lambda sign, days, hours, seconds: f"{sign}P{days}DT{hours}H{seconds}S",
    st.sampled_from(["", "-"]),
    st.integers(0, 10**12),
    st.integers(0, 10**6),
    st.integers(0, 10**9),
)
values: st.SearchStrategy[Any] = (
    st.text(max_size=30)
    | st.integers(-(10**20), 10**20).map(str)
    | st.floats().map(str)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-(10**20), 10**20)
    | iso
    | st.sampled_from(["1e308", "-0", "PT0S", "P999999999D", "86399999999999", "NaN", "inf"])
)


def build(name: str, value: Any) -> Settings | None:
    """The settings, or ``None`` for a validation error; anything else propagates."""
    try:
        return Settings.model_validate({name: value})
    except ValidationError as exc:
        described = describe_validation_error(exc)
    assert described.startswith("invalid setting"), described
    return None


@PROPERTIES
@given(name=st.sampled_from(DURATIONS), value=values)
def test_RES_02_any_duration_is_a_setting_or_a_validation_error(name: str, value: Any) -> None:
    settings = build(name, value)
    if settings is not None:
        duration = getattr(settings, name)
        assert duration is not None  # a value was given: an optional one is set too
        assert timedelta(0) <= duration <= MAX_DURATION
        settings.session_policy()
        settings.token_policy()
        settings.throttle_policy()


@pytest.mark.parametrize("name", DURATIONS)
def test_RES_02_the_longest_duration_is_accepted_and_one_second_more_is_not(name: str) -> None:
    longest = int(MAX_DURATION.total_seconds())
    settings = build(name, str(longest))
    if settings is not None:  # other rules (e.g. idle <= absolute) may refuse it
        assert getattr(settings, name) == MAX_DURATION
    with pytest.raises(ValidationError, match="at most"):
        Settings.model_validate({name: str(longest + 1)})


def test_RES_02_optional_durations_are_covered_too() -> None:
    assert "session_transient_lifetime" in DURATIONS
