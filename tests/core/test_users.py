"""Accounts: email normalisation, registration, disabled users."""

from __future__ import annotations

import hashlib

import pytest

from tests.support.services import PASSWORD, started_service
from velvetrope import AuthService, FrozenClock, PasswordHasher
from velvetrope.core.users import email_handle, normalize_email
from velvetrope.errors import (
    AccountDisabled,
    EmailTaken,
    InvalidCredentials,
    InvalidEmail,
    UserNotFound,
)
from velvetrope.stores import Stores


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


@pytest.mark.every_backend
async def test_LOG_01_a_failed_sign_ins_address_handle_is_keyed_and_shared_by_nodes(
    stores: Stores, clock: FrozenClock, hasher: PasswordHasher
) -> None:
    """Two started services over one store (two nodes) key the handle of an address with
    the secret they share, so it is not the plain hash a word list of addresses would
    find. A wrong password for an existing account is that user's event."""
    nodes = [await started_service(stores, clock=clock, hasher=hasher) for _ in range(2)]
    ann = await nodes[0].register("ann@example.com", PASSWORD)
    for n, node in enumerate(nodes):
        for email in ("Bob@Example.com", "ann@example.com"):  # no account; a wrong password
            with pytest.raises(InvalidCredentials):
                await node.login(email, "not the password at all", ip=f"192.0.2.{n}")
        await node.security_log.flush()
    plain = hashlib.sha256(b"bob@example.com").hexdigest()[:12]
    [a, b] = [node.users.email_handle("bob@example.com") for node in nodes]
    assert a == b != plain
    found = await stores.security_log.for_subjects([f"email:{a}"], limit=5)
    assert sorted(e.ip for e in found) == ["192.0.2.0", "192.0.2.1"]
    assert await stores.security_log.for_subjects([f"email:{plain}"], limit=5) == []
    listed = await nodes[1].security_events(ann)
    failed = [e for e in listed if e.event == "login_failed"]
    assert sorted(e.ip for e in failed) == ["192.0.2.0", "192.0.2.1"]
    assert {e.subject for e in failed} == {ann.id}


def test_the_handle_key_must_be_long_enough() -> None:
    with pytest.raises(ValueError, match="32 bytes"):
        email_handle("ann@example.com", b"short")
    assert email_handle("ann@example.com", b"k" * 32) != email_handle("ann@example.com", b"j" * 32)
