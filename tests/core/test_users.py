"""Accounts: email normalisation, registration, disabled users."""

from __future__ import annotations

import pytest

from tests.support.services import PASSWORD
from velvetrope import AuthService
from velvetrope.core.users import normalize_email
from velvetrope.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    UserNotFound,
)


@pytest.mark.parametrize(
    ("raw", "normal"),
    [
        ("Ann@Example.COM", "ann@example.com"),
        ("  ann@example.com\n", "ann@example.com"),
        ("ann@EXAMPLE.com", "ann@example.com"),
        ("josé@example.com", "josé@example.com"),
        ("ann@bücher.example", "ann@bücher.example"),
    ],
)
def test_emails_are_normalised(raw: str, normal: str) -> None:
    assert normalize_email(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "ann",
        "ann@",
        "@example.com",
        "ann@@example.com",
        "a b@example.com",
        "ann@example..com",
        "ann@" + "d" * 250 + ".com",
        "ann\x00@example.com",
    ],
)
def test_invalid_emails_are_refused_with_a_reason(raw: str) -> None:
    with pytest.raises(InvalidEmail, match="not valid"):
        normalize_email(raw)


async def test_emails_differing_only_in_case_are_one_account(service: AuthService) -> None:
    await service.register("Ann@Example.com", PASSWORD)
    with pytest.raises(EmailTaken):
        await service.register("ANN@example.COM", PASSWORD)
    await service.login("aNN@eXample.com", PASSWORD)


async def test_login_with_a_malformed_email_is_invalid_credentials(service: AuthService) -> None:
    with pytest.raises(InvalidCredentials):
        await service.login("not an email", PASSWORD)


async def test_disabled_account_cannot_sign_in_and_enabled_can(service: AuthService) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    await service.disable_user(user.id)
    with pytest.raises(AccountDisabled):
        await service.login("ann@example.com", PASSWORD)
    with pytest.raises(InvalidCredentials):  # wrong password says nothing about the state
        await service.login("ann@example.com", "wrong password entirely")
    await service.enable_user(user.id)
    await service.login("ann@example.com", PASSWORD)


async def test_find_by_email_or_id(service: AuthService) -> None:
    user = await service.register("ann@example.com", PASSWORD)
    assert (await service.users.find("ANN@example.com")).id == user.id
    assert (await service.users.find(user.id)).email == user.email
    with pytest.raises(UserNotFound):
        await service.users.find("nobody@example.com")
