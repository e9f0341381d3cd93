"""Settings of the hybrid gateway: off by default, read from VELVETROPE_GATEWAY_*, bounded."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from velvetrope import Settings
from velvetrope.settings import describe_validation_error

pytestmark = pytest.mark.usefixtures("no_env")


def make(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


def test_the_gateway_is_off_until_an_audience_is_configured() -> None:
    assert make().gateway_policy() is None


def test_it_reads_from_velvetrope_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELVETROPE_GATEWAY_AUDIENCES", "orders, billing ,")
    monkeypatch.setenv("VELVETROPE_GATEWAY_TOKEN_TTL", "PT2M")
    monkeypatch.setenv("VELVETROPE_GATEWAY_ISSUER", "https://edge.example")
    monkeypatch.setenv("VELVETROPE_GATEWAY_MINT_CACHE", "0")
    policy = make().gateway_policy()
    assert policy is not None
    assert policy.audiences == frozenset({"orders", "billing"})
    assert (policy.ttl, policy.issuer, policy.cache_size) == (
        timedelta(minutes=2),
        "https://edge.example",
        0,
    )
    assert policy.renew_before == timedelta(seconds=5)


def test_defaults_once_on_are_60_second_eddsa_tokens_with_a_cache() -> None:
    policy = make(gateway_audiences="orders", public_origin="https://app.example").gateway_policy()
    assert policy is not None
    assert (policy.ttl, policy.algorithm, policy.cache_size) == (
        timedelta(seconds=60),
        "EdDSA",
        10_000,
    )
    assert policy.issuer == "https://app.example"


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"gateway_token_ttl": "3600"}, "lifetime"),
        ({"gateway_token_ttl": "1"}, "lifetime"),
        ({"gateway_algorithm": "HS256"}, "GATEWAY_ALGORITHM"),
        ({"gateway_mint_cache": "-1"}, "GATEWAY_MINT_CACHE"),
        ({"browser_credentials": "jwt-cookie"}, "jwt-cookie"),
    ],
)
def test_bad_values_are_refused_with_a_sentence(changes: dict[str, str], named: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make(gateway_audiences="orders", **changes)
    assert named in describe_validation_error(refused.value)


@pytest.mark.parametrize("value", [" , ,", ",", " "])
def test_audiences_that_name_no_service_are_refused_not_read_as_off(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("VELVETROPE_GATEWAY_AUDIENCES", value)
    with pytest.raises(ValidationError) as refused:
        make()
    described = describe_validation_error(refused.value)
    assert "VELVETROPE_GATEWAY_AUDIENCES" in described
    assert "names no audience" in described
