"""``velvetrope.testing`` and its pytest plugin, as far as the README example does not
show them: the settings it makes, and what it refuses."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi import FastAPI

from tests.support.services import PASSWORD
from velvetrope import Settings, Velvetrope
from velvetrope.testing import (
    ORIGIN,
    TEST_ENVIRONMENT,
    app_client,
    new_user,
    settings_for_tests,
    sign_in,
)


def test_settings_for_tests_are_fast_on_memory_and_safe_elsewhere(tmp_path: Path) -> None:
    fast = settings_for_tests()
    assert (fast.database_url, fast.origin, fast.password_hash_profile) == (
        "memory://",
        ORIGIN,
        "test-only",
    )
    on_disk = settings_for_tests(database_url=f"sqlite:///{tmp_path / 'vr.db'}")
    assert on_disk.password_hash_profile == "owasp-minimum"


def test_the_test_only_hash_profile_is_refused_with_a_real_store(no_env: None) -> None:
    with pytest.raises(
        ValueError, match=r"test-only hashes .* needs VELVETROPE_DATABASE_URL=memory://"
    ):
        Settings(_env_file=None, database_url="sqlite:///x.db", password_hash_profile="test-only")


def test_the_plugin_environment_matches_the_settings() -> None:
    from_env = Settings.model_validate(
        {k.removeprefix("VELVETROPE_").lower(): v for k, v in TEST_ENVIRONMENT.items()}
    )
    assert from_env.database_url == settings_for_tests().database_url
    assert from_env.origin == ORIGIN
    assert from_env.password_hash_profile == "test-only"


def test_the_velvetrope_settings_fixture(velvetrope_settings: Settings) -> None:
    assert velvetrope_settings == settings_for_tests()


async def test_app_client_refuses_an_http_origin_that_would_drop_secure_cookies() -> None:
    app = FastAPI()
    Velvetrope(settings_for_tests(public_origin="http://127.0.0.1:8001")).install(app)
    with pytest.raises(ValueError, match="needs an https origin"):
        async with app_client(app):
            pass


async def test_app_client_refuses_an_app_without_velvetrope() -> None:
    with pytest.raises(LookupError, match=r"auth.install\(app\)"):
        async with app_client(FastAPI()):
            pass


async def test_sign_in_says_why_it_was_refused() -> None:
    app = FastAPI()
    Velvetrope(settings_for_tests()).install(app)
    async with app_client(app) as client:
        ann = await new_user(client, "ann@example.com", password=PASSWORD)
        impostor = type(ann)(ann.id, ann.email, "not the password at all", ann.velvetrope)
        with pytest.raises(AssertionError, match=r"401.*invalid_credentials"):
            await sign_in(client, impostor)
