"""Password hashing and policy: PW-01, PW-03..PW-06, PW-08."""

from __future__ import annotations

import base64

import argon2
import pytest

from tests.support.services import PASSWORD
from velvetrope import AuthService, PasswordHasher, PasswordPolicy
from velvetrope.core.passwords import PROFILES, _common_passwords
from velvetrope.errors import InvalidCredentials, WeakPassword


@pytest.fixture(scope="module")
def default_hasher() -> PasswordHasher:
    return PasswordHasher()


def test_PW_01_default_profile_is_argon2id_above_the_owasp_floor(
    default_hasher: PasswordHasher,
) -> None:
    params = default_hasher.parameters
    assert params.type is argon2.Type.ID
    assert params.memory_cost >= 19 * 1024
    assert params.time_cost >= 2
    assert params.parallelism >= 1
    assert default_hasher.profile == "rfc9106-low-memory"


@pytest.mark.parametrize("name", ["rfc9106-low-memory", "owasp-minimum"])
def test_PW_01_every_selectable_profile_meets_the_floor(name: str) -> None:
    params = PROFILES[name]
    assert params.type is argon2.Type.ID
    floor_ok = (params.memory_cost >= 19 * 1024 and params.time_cost >= 2) or (
        params.memory_cost >= 46 * 1024 and params.time_cost >= 1
    )
    assert floor_ok


async def test_PW_01_PW_04_stored_hash_is_argon2id_with_a_unique_16_byte_salt(
    default_hasher: PasswordHasher,
) -> None:
    first = await default_hasher.hash(PASSWORD)
    second = await default_hasher.hash(PASSWORD)
    params = argon2.extract_parameters(first)
    assert first.startswith("$argon2id$v=19$")
    assert params.memory_cost >= 19 * 1024
    assert params.salt_len >= 16
    salt = first.split("$")[4]
    assert len(base64.b64decode(salt + "==")) >= 16
    assert first.split("$")[4] != second.split("$")[4]


async def test_PW_03_a_weaker_stored_hash_is_upgraded_on_login(
    service: AuthService, default_hasher: PasswordHasher
) -> None:
    user = await service.register("ann@example.com", PASSWORD)  # test-only (weak) profile
    strong = AuthService(service.stores, hasher=default_hasher, now=service.now)
    await strong.login("ann@example.com", PASSWORD)
    stored = await service.stores.users.get(user.id)
    assert stored is not None
    assert argon2.extract_parameters(stored.password_hash) == default_hasher.parameters
    await strong.login("ann@example.com", PASSWORD)  # the upgraded hash verifies


async def test_PW_05_password_is_used_exactly_as_typed(service: AuthService) -> None:
    await service.register("ann@example.com", "  Exactly As Typed, spaces too  ")
    for variant in ("Exactly As Typed, spaces too", "  exactly as typed, spaces too  "):
        with pytest.raises(InvalidCredentials):
            await service.login("ann@example.com", variant)
    await service.login("ann@example.com", "  Exactly As Typed, spaces too  ")


async def test_PW_05_long_passwords_are_not_truncated(service: AuthService) -> None:
    long = "a long passphrase that goes on " * 10
    await service.register("ann@example.com", long)
    with pytest.raises(InvalidCredentials):
        await service.login("ann@example.com", long[:72])  # bcrypt's truncation point
    with pytest.raises(InvalidCredentials):
        await service.login("ann@example.com", long[:-1])
    await service.login("ann@example.com", long)


async def test_PW_05_unicode_is_normalised_nfkc(service: AuthService) -> None:
    """NIST SP 800-63B: the same characters typed on different keyboards match."""
    await service.register("ann@example.com", "café au lait, s'il vous plaît")  # precomposed é
    await service.login("ann@example.com", "cafe\u0301 au lait, s'il vous plai\u0302t")


def test_PW_05_length_rules_and_no_composition_rules() -> None:
    policy = PasswordPolicy()
    policy.check("all lower case words")  # no digits, symbols or capitals needed
    policy.check("x" * 3 + "y" * 4 + "zq" * 4)
    policy.check("длинная фраза по-русски")
    with pytest.raises(WeakPassword, match="at least 15"):
        policy.check("short but ok!?")
    with pytest.raises(WeakPassword, match="at most 1024"):
        policy.check("long enough words " * 60)
    policy.check("w" + "ord salad " * 6 + "!" * 3)  # 64+ characters are fine
    with pytest.raises(ValueError, match="at least 8"):
        PasswordPolicy(min_length=7)


@pytest.mark.parametrize(
    "password",
    [
        "password1234567",
        "Password123456789",
        "qwertyuiopasdfgh",
        "123456789012345",
        "aaaaaaaaaaaaaaaa",
        "abababababababab",
        "!!!iloveyou2024!!!",
        "abcdefghijklmnop",
        "ann@example.com",
    ],
)
def test_PW_06_common_and_derived_passwords_are_refused(password: str) -> None:
    with pytest.raises(WeakPassword, match="too common"):
        PasswordPolicy().check(password, email="ann@example.com")


def test_PW_06_the_blocklist_has_at_least_3000_entries() -> None:
    common = _common_passwords()
    assert len(common) >= 3000
    assert {"password", "123456", "iloveyou", "dragon"} <= common


async def test_PW_06_blocklist_is_checked_at_registration_and_change(
    service: AuthService,
) -> None:
    with pytest.raises(WeakPassword):
        await service.register("ann@example.com", "password1234567")
    secret = (
        await service.login((await service.register("ann@example.com", PASSWORD)).email, PASSWORD)
    ).session.secret
    principal = await service.authenticate(secret)
    with pytest.raises(WeakPassword):
        await service.change_password(principal, secret, PASSWORD, "iloveyou1234567!")


async def test_PW_08_unknown_email_and_wrong_password_are_indistinguishable(
    service: AuthService,
) -> None:
    await service.register("ann@example.com", PASSWORD)
    errors = []
    for email, password in [("nobody@example.com", PASSWORD), ("ann@example.com", "wrong" * 4)]:
        with pytest.raises(InvalidCredentials) as caught:
            await service.login(email, password)
        errors.append((type(caught.value), caught.value.code, caught.value.detail))
    assert errors[0] == errors[1]


async def test_PW_08_unknown_email_still_costs_a_real_verification(
    default_hasher: PasswordHasher, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The unknown-user path runs one full argon2 verification, with the very parameters
    real hashes get, so it costs what a wrong password costs (argon2's work is set by its
    parameters alone). Counted, not timed: a missing dummy verification fails this."""
    real = await default_hasher.hash(PASSWORD)
    verified: list[str] = []

    class Counting:
        """The real argon2 hasher, noting each hash it verifies against."""

        def __init__(self, inner: argon2.PasswordHasher) -> None:
            self.inner = inner

        def verify(self, stored: str, password: str) -> bool:
            verified.append(stored)
            return self.inner.verify(stored, password)

        def __getattr__(self, name: str) -> object:
            return getattr(self.inner, name)

    monkeypatch.setattr(default_hasher, "_hasher", Counting(default_hasher._hasher))
    assert not (await default_hasher.verify(None, "a wrong password!!")).ok
    assert not (await default_hasher.verify(real, "a wrong password!!")).ok
    unknown, wrong = verified
    assert wrong == real
    assert argon2.extract_parameters(unknown) == argon2.extract_parameters(real)
    assert argon2.extract_parameters(real) == default_hasher.parameters


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("\ufb00\ufb01\ufb02\ufb03\ufb04Zq7#Kp", False),  # 11 sent, 18 after NFKC
        ("Zq7#Kp-" + "\ufb03" * 8, True),  # 15 sent, 31 after NFKC
        ("cafe\u0301 noir, mer", True),  # 15 sent, 14 after NFKC
        ("Zq7#Kp" + "\ufdfa" * 1018, True),  # 1,024 sent, far more after NFKC
        ("Zq7#Kp" + "\ufdfa" * 1019, False),  # 1,025 sent
    ],
)
def test_PW_05_length_is_counted_as_sent_like_the_schemas_min_and_max_length(
    password: str, ok: bool
) -> None:
    """The OpenAPI document's minLength/maxLength count code points as sent; the policy
    counts the same, whatever NFKC makes of them."""
    policy = PasswordPolicy()
    if ok:
        policy.check(password)
    else:
        with pytest.raises(WeakPassword, match="characters long"):
            policy.check(password)
