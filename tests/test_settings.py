"""Settings: environment variables, OPS-01 transport safety, clear errors."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pydantic import ValidationError

from velvetrope import Settings
from velvetrope.settings import describe_validation_error

pytestmark = pytest.mark.usefixtures("no_env")


def make(**kwargs: object) -> Settings:
    return Settings(_env_file=None, **kwargs)  # type: ignore[arg-type]


def test_defaults_are_sqlite_on_loopback_with_secure_cookies() -> None:
    settings = make()
    assert settings.database_url == "sqlite:///velvetrope.db"
    assert settings.origin == "http://127.0.0.1:8000"
    assert settings.secure_cookies is True
    assert settings.https is False


def test_every_setting_reads_from_velvetrope_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", "memory://")
    monkeypatch.setenv("VELVETROPE_SESSION_IDLE_TIMEOUT", "PT15M")
    monkeypatch.setenv("VELVETROPE_SESSION_ABSOLUTE_LIFETIME", "3600")
    monkeypatch.setenv("VELVETROPE_PUBLIC_ORIGIN", "https://Auth.Example.com")
    settings = make()
    assert settings.database_url == "memory://"
    assert settings.session_idle_timeout == timedelta(minutes=15)
    assert settings.session_absolute_lifetime == timedelta(hours=1)
    assert settings.origin == "https://auth.example.com"
    assert settings.https is True


@pytest.mark.parametrize(
    "origin",
    ["http://localhost:8000", "http://127.0.0.1", "http://[::1]:9000", "https://a.example"],
)
def test_OPS_01_loopback_http_and_https_origins_start_with_secure_cookies(origin: str) -> None:
    assert make(public_origin=origin).secure_cookies is True


@pytest.mark.parametrize(
    "kwargs",
    [
        {"public_origin": "http://auth.example.com"},
        {"host": "0.0.0.0"},  # noqa: S104 - the bind address under test
        {"host": "192.0.2.10"},
    ],
)
def test_OPS_01_plain_http_elsewhere_refuses_to_start(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValidationError) as caught:
        make(**kwargs)
    message = describe_validation_error(caught.value)
    assert "plain http" in message
    assert "VELVETROPE_DEV_INSECURE_HTTP" in message
    assert "\n" not in message


def test_OPS_01_the_development_flag_allows_http_and_drops_secure() -> None:
    settings = make(public_origin="http://devbox.lan:8000", dev_insecure_http=True)
    assert settings.secure_cookies is False


@pytest.mark.parametrize(
    ("kwargs", "variable"),
    [
        ({"port": "abc"}, "VELVETROPE_PORT"),
        ({"port": 70000}, "VELVETROPE_PORT"),
        ({"public_origin": "ftp://x"}, "VELVETROPE_PUBLIC_ORIGIN"),
        ({"public_origin": "https://a.example/path"}, "VELVETROPE_PUBLIC_ORIGIN"),
        ({"password_min_length": 4}, "VELVETROPE_PASSWORD_MIN_LENGTH"),
        ({"session_idle_timeout": "soon"}, "VELVETROPE_SESSION_IDLE_TIMEOUT"),
        ({"password_hash_profile": "test-only"}, "VELVETROPE_PASSWORD_HASH_PROFILE"),
    ],
)
def test_bad_values_name_the_variable_in_one_sentence(
    kwargs: dict[str, object], variable: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make(**kwargs)
    message = describe_validation_error(caught.value)
    assert message.startswith(f"invalid setting {variable}: ")


def test_TIME_03_idle_longer_than_absolute_is_refused() -> None:
    with pytest.raises(ValidationError, match="cannot exceed"):
        make(session_idle_timeout=7200, session_absolute_lifetime=3600)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"session_absolute_lifetime": "P31D"}, "30 days"),
        ({"session_idle_timeout": "-5"}, "positive"),
        ({"login_max_delay": "0"}, "VELVETROPE_LOGIN_MAX_DELAY"),
        ({"session_touch_interval": "PT2H"}, "VELVETROPE_SESSION_TOUCH_INTERVAL"),
    ],
)
def test_TIME_03_out_of_range_durations_are_refused_with_the_reason(
    kwargs: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make(**kwargs)
    assert reason in describe_validation_error(caught.value)


def test_OPS_01_a_loopback_origin_does_not_license_binding_every_interface() -> None:
    with pytest.raises(ValidationError, match="plain http"):
        make(public_origin="http://localhost:8000", host="0.0.0.0")  # noqa: S104


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"token_issuer": "x" * 257}, "issuer"),
        ({"refresh_idle_timeout": "-1"}, "VELVETROPE_REFRESH_IDLE_TIMEOUT"),
    ],
)
def test_token_settings_that_would_break_every_token_are_refused(
    kwargs: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        make(**kwargs)
    assert reason in describe_validation_error(caught.value)


def test_DPOP_04_process_replay_scope_is_refused_with_several_workers() -> None:
    """A process-local replay cache would let a proof replayed to another worker through."""
    with pytest.raises(ValidationError, match="DPOP_REPLAY_SCOPE=process"):
        Settings(
            _env_file=None,
            database_url="sqlite:///vr.db",
            workers=2,
            dpop_replay_scope="process",
        )
    assert Settings(_env_file=None, workers=2).dpop_policy().replay_scope == "shared"
