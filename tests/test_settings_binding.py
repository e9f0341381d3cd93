"""Settings of bound credentials: DPoP and device-bound sessions, defaults and refusals."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from velvetrope import Settings
from velvetrope.settings import describe_validation_error

pytestmark = pytest.mark.usefixtures("no_env")


def make(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


def test_DPOP_09_and_DBSC_01_defaults_allow_dpop_and_offer_binding() -> None:
    settings = make()
    assert settings.dpop_policy().mode == "allow"
    assert settings.dpop_policy().window == timedelta(seconds=60)
    assert settings.dpop_policy().nonce is False
    binding = settings.binding_policy()
    assert (binding.mode, binding.bound_cookie_ttl) == ("offer", timedelta(minutes=10))
    assert binding.grace == timedelta(seconds=10)


def test_they_read_from_velvetrope_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELVETROPE_DPOP", "require")
    monkeypatch.setenv("VELVETROPE_DPOP_NONCE", "true")
    monkeypatch.setenv("VELVETROPE_DPOP_PROOF_WINDOW", "PT2M")
    monkeypatch.setenv("VELVETROPE_SESSION_BINDING", "require")
    monkeypatch.setenv("VELVETROPE_BOUND_COOKIE_TTL", "300")
    monkeypatch.setenv("VELVETROPE_SESSION_BINDING_GRACE", "2")
    settings = make()
    dpop, binding = settings.dpop_policy(), settings.binding_policy()
    assert (dpop.mode, dpop.nonce, dpop.window) == ("require", True, timedelta(minutes=2))
    assert (binding.mode, binding.bound_cookie_ttl) == ("require", timedelta(minutes=5))
    assert binding.grace == timedelta(seconds=2)


@pytest.mark.parametrize(
    ("changes", "says"),
    [
        ({"dpop": "sometimes"}, "VELVETROPE_DPOP: Input should be 'off', 'allow' or 'require'"),
        ({"session_binding": "yes"}, "VELVETROPE_SESSION_BINDING: Input should be"),
        ({"dpop_proof_window": "3600"}, "proof window must be between 1 second and 10 minutes"),
        ({"bound_cookie_ttl": "0"}, "bound cookie lifetime must be between 1 second and 1 hour"),
        ({"session_binding_grace": "PT1H"}, "binding grace must be between 0 and 5 minutes"),
        (
            {"dpop": "require", "browser_credentials": "jwt-cookie"},
            "VELVETROPE_DPOP=require cannot be combined",
        ),
    ],
)
def test_bad_values_stop_the_start_with_a_sentence(changes: dict[str, str], says: str) -> None:
    with pytest.raises(ValidationError) as refused:
        make(**changes)
    assert says in describe_validation_error(refused.value)
