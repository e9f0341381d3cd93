"""CSRF-11: CORS for listed origins only, exact, with credentials; never ``*``."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from tests.support.services import ORIGIN
from tests.web.csrf.helpers import MODES, TRUSTED, Browser, vary_of
from velvetrope import Settings
from velvetrope.settings import describe_validation_error

# --- CSRF-11: CORS ----------------------------------------------------------------------------


def preflight(origin: str, method: str = "POST") -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type, x-csrf-token",
    }


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "origin",
    [
        "https://evil.example",
        "null",
        "https://app.example.com.evil.example",
        "https://evilapp.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        ORIGIN,  # same-origin needs no CORS; it is not in the allowlist either
    ],
)
async def test_CSRF_11_a_preflight_from_an_unlisted_origin_gets_no_allow_origin(
    cors_browser: Browser, origin: str
) -> None:
    response = await cors_browser.http.options("/auth/logout", headers=preflight(origin))
    assert "access-control-allow-origin" not in response.headers
    assert response.status_code >= 400
    simple = await cors_browser.http.get("/auth/me", headers={"Origin": origin})
    assert "access-control-allow-origin" not in simple.headers


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("origin", [TRUSTED, "https://admin.example.com"])
async def test_CSRF_11_a_listed_origin_gets_exactly_itself_and_credentials(
    cors_browser: Browser, origin: str
) -> None:
    response = await cors_browser.http.options("/auth/logout", headers=preflight(origin))
    assert response.status_code == 200
    assert response.headers.get_list("access-control-allow-origin") == [origin]
    assert response.headers["access-control-allow-credentials"] == "true"
    allowed = {
        h.strip().lower() for h in response.headers["access-control-allow-headers"].split(",")
    }
    assert "x-csrf-token" in allowed
    assert "origin" in vary_of(response)
    simple = await cors_browser.http.get("/auth/me", headers={"Origin": origin})
    assert simple.status_code == 200
    assert simple.headers.get_list("access-control-allow-origin") == [origin]
    assert simple.headers["access-control-allow-credentials"] == "true"
    assert "origin" in vary_of(simple)


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_11_without_an_allowlist_there_is_no_cors_at_all(browser: Browser) -> None:
    for origin in (TRUSTED, "https://evil.example", "null"):
        response = await browser.http.options("/auth/logout", headers=preflight(origin))
        assert not any(h.startswith("access-control-") for h in response.headers)
        simple = await browser.http.get("/auth/me", headers={"Origin": origin})
        assert not any(h.startswith("access-control-") for h in simple.headers)


REFUSED_CORS = [
    "*",
    "https://*.example.com",
    "*.example.com",
    "https://app.example.*",
    r"https://.*\.example\.com",
    r"^https://app\.example\.com$",
    "/app\\.example\\.com/",
    "example.com",
    "app.example.com:443",
    "https://",
    "https://example.com/path",
    "https://example.com?query=value",
    "https://example.com#fragment",
    "https://user@example.com",
    "https://user:pass@example.com",
    "null",
    "ftp://example.com",
    "https://ok.example.com, *",
]


@pytest.mark.parametrize("entry", REFUSED_CORS)
def test_CSRF_11_wildcards_patterns_and_non_origins_are_refused_at_settings_load(
    entry: str,
) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(database_url="memory://", public_origin=ORIGIN, cors_origins=entry, _env_file=None)
    sentence = describe_validation_error(caught.value)
    assert "VELVETROPE_CORS_ORIGINS" in sentence
    assert "never *" in sentence


def test_CSRF_11_the_allowlist_comes_from_the_environment_too(
    no_env: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VELVETROPE_PUBLIC_ORIGIN", ORIGIN)
    monkeypatch.setenv("VELVETROPE_DATABASE_URL", "memory://")
    monkeypatch.setenv("VELVETROPE_CORS_ORIGINS", "*")
    with pytest.raises(ValidationError):
        Settings(_env_file=None)
    monkeypatch.setenv("VELVETROPE_CORS_ORIGINS", f" {TRUSTED} ,HTTPS://Admin.Example.com/ ,")
    assert Settings(_env_file=None).cors_allowlist() == (TRUSTED, "https://admin.example.com")


def test_CSRF_11_default_ports_are_normalised_away() -> None:
    settings = Settings(
        database_url="memory://",
        public_origin="https://testserver:443",
        cors_origins="https://app.example.com:443",
        _env_file=None,
    )
    assert settings.cors_allowlist() == (TRUSTED,)
    assert settings.origin == ORIGIN


def test_CSRF_11_an_invalid_host_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(
            database_url="memory://",
            public_origin=ORIGIN,
            cors_origins="https://ex ample.com",
            _env_file=None,
        )
