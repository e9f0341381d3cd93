"""CsrfTokens: signed double-submit values bound to a credential (CSRF-02, CSRF-03)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st

from velvetrope.core.csrf import (
    CsrfTokens,
    family_binding,
    presession_binding,
    session_binding,
)

SECRET = bytes(range(32))
OTHER_SECRET = bytes(range(1, 33))
A = session_binding("a" * 64)
B = session_binding("b" * 64)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def counting_bytes() -> Callable[[int], bytes]:
    """A deterministic random source: 0x01.., 0x02.., ... (each call a new value)."""
    counter = itertools.count(1)
    return lambda n: bytes([next(counter) % 256]) * n


def documented_mac(secret: bytes, binding: str, random_part: str) -> str:
    """The MAC computed independently from the module docstring's message layout."""
    message = f"{len(binding)}!{binding}!{len(random_part)}!{random_part}".encode()
    return _b64(hmac.new(secret, message, hashlib.sha256).digest())


@pytest.fixture
def tokens() -> CsrfTokens:
    return CsrfTokens(SECRET)


def test_a_token_verifies_for_the_binding_it_was_minted_for(tokens: CsrfTokens) -> None:
    token = tokens.issue(A)
    assert tokens.verify(A, token)


def test_each_token_is_new(tokens: CsrfTokens) -> None:
    issued = {tokens.issue(A) for _ in range(50)}
    assert len(issued) == 50
    assert all(tokens.verify(A, token) for token in issued)


def test_the_random_part_comes_from_the_injected_source() -> None:
    tokens = CsrfTokens(SECRET, token_bytes=counting_bytes())
    first, second = tokens.issue(A), tokens.issue(A)
    assert first.split(".")[0] == _b64(b"\x01" * 16)
    assert second.split(".")[0] == _b64(b"\x02" * 16)


# --- CSRF-02: bound to the credential, never a naive double-submit -------------------------


def test_CSRF_02_a_token_for_one_binding_is_refused_for_another(tokens: CsrfTokens) -> None:
    assert not tokens.verify(B, tokens.issue(A))
    assert not tokens.verify(A, tokens.issue(B))


@pytest.mark.parametrize(
    ("minted", "presented"),
    [
        (session_binding("d"), family_binding("d")),
        (session_binding("d"), presession_binding("d")),
        (family_binding("d"), session_binding("d")),
        (family_binding("d"), presession_binding("d")),
        (presession_binding("d"), session_binding("d")),
        (presession_binding("d"), family_binding("d")),
    ],
)
def test_CSRF_02_the_kinds_of_binding_are_separate_domains(
    tokens: CsrfTokens, minted: str, presented: str
) -> None:
    """The same value as a session digest, a family id and a pre-session nonce: three
    different bindings (a pre-session token is no session token, CSRF-04)."""
    assert not tokens.verify(presented, tokens.issue(minted))


@given(st.text(min_size=1, max_size=80), st.text(min_size=1, max_size=80), st.binary(min_size=16))
def test_CSRF_02_distinct_bindings_never_share_tokens(a: str, b: str, seed: bytes) -> None:
    tokens = CsrfTokens(SECRET, token_bytes=lambda n: seed[:n])
    token = tokens.issue(a)
    assert tokens.verify(a, token)
    assert tokens.verify(b, token) == (a == b)


def test_CSRF_02_a_random_well_shaped_pair_is_refused(tokens: CsrfTokens) -> None:
    """A naive double-submit accepts any value the cookie and header agree on; here the
    attacker's own well-shaped value is worthless without the secret."""
    forged = f"{_b64(bytes(16))}.{_b64(bytes(32))}"
    assert not tokens.verify(A, forged)
    unkeyed = _b64(hashlib.sha256(b"session:" + b"a" * 64).digest())
    assert not tokens.verify(A, f"{_b64(bytes(16))}.{unkeyed}")


def test_CSRF_02_parts_of_two_valid_tokens_do_not_combine(tokens: CsrfTokens) -> None:
    first, second = tokens.issue(A), tokens.issue(A)
    (r1, m1), (r2, m2) = first.split("."), second.split(".")
    assert not tokens.verify(A, f"{r1}.{m2}")
    assert not tokens.verify(A, f"{r2}.{m1}")


def test_CSRF_02_a_flipped_character_is_refused(tokens: CsrfTokens) -> None:
    token = tokens.issue(A)
    for index in (0, 21, 23, len(token) - 2):
        swapped = "B" if token[index] == "A" else "A"
        assert not tokens.verify(A, token[:index] + swapped + token[index + 1 :])


# --- CSRF-03: length-prefixed message, dedicated secret -------------------------------------


def test_CSRF_03_the_mac_covers_the_length_prefixed_message(tokens: CsrfTokens) -> None:
    """Pinned against an independent computation of ``len!binding!len!random``."""
    token = CsrfTokens(SECRET, token_bytes=counting_bytes()).issue(A)
    random_part, mac = token.split(".")
    assert mac == documented_mac(SECRET, A, random_part)
    assert tokens.verify(A, token)


def test_CSRF_03_a_mac_over_the_naive_concatenation_is_refused(tokens: CsrfTokens) -> None:
    random_part = _b64(bytes(range(16)))
    for message in (A + random_part, f"{A}!{random_part}", f"{A}{random_part}".lower()):
        naive = _b64(hmac.new(SECRET, message.encode(), hashlib.sha256).digest())
        assert not tokens.verify(A, f"{random_part}.{naive}")
    assert tokens.verify(A, f"{random_part}.{documented_mac(SECRET, A, random_part)}")


@pytest.mark.parametrize(
    ("first", "second"),
    [("session:ab", "session:a"), ("family:xy12", "family:x"), ("presession:n9", "presession:n")],
)
def test_CSRF_03_bindings_that_collide_when_concatenated_do_not_verify(
    tokens: CsrfTokens, first: str, second: str
) -> None:
    """Move characters from the binding into the random part: the naive HMAC input
    (binding + random) stays the same, the length-prefixed one does not."""
    shift = len(first) - len(second)
    random_part = _b64(bytes(range(16)))[: 22 - shift]
    moved = first[len(second) :] + random_part
    assert len(moved) == 22
    assert first + random_part == second + moved  # naively, one and the same message
    mac = tokens._mac(first, random_part)  # what a token for ``first`` would carry
    assert mac != tokens._mac(second, moved)
    assert not tokens.verify(second, f"{moved}.{mac}")


def test_CSRF_03_a_token_made_under_another_secret_is_refused(tokens: CsrfTokens) -> None:
    other = CsrfTokens(OTHER_SECRET)
    assert not tokens.verify(A, other.issue(A))
    assert not other.verify(A, tokens.issue(A))


def test_CSRF_03_tokens_made_under_the_same_secret_verify_anywhere() -> None:
    """Two nodes holding the same secret agree (the cross-node property in miniature)."""
    assert CsrfTokens(bytes(SECRET)).verify(A, CsrfTokens(SECRET).issue(A))


@pytest.mark.parametrize("size", [0, 1, 16, 31])
def test_CSRF_03_a_secret_shorter_than_32_bytes_is_refused(size: int) -> None:
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CsrfTokens(b"k" * size)


def test_CSRF_03_a_32_byte_secret_is_enough() -> None:
    tokens = CsrfTokens(b"k" * 32)
    assert tokens.verify(A, tokens.issue(A))


# --- compare in constant time -------------------------------------------------------------


def test_the_mac_is_compared_with_compare_digest(
    tokens: CsrfTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[object, object]] = []
    real = hmac.compare_digest

    def spy(a: str, b: str) -> bool:
        calls.append((a, b))
        return real(a, b)

    token = tokens.issue(A)
    monkeypatch.setattr(hmac, "compare_digest", spy)
    assert tokens.verify(A, token)
    assert not tokens.verify(B, token)
    mac = token.split(".")[1]
    assert [a for a, _ in calls] == [mac, mac]
    assert calls[0][1] == mac
    assert calls[1][1] != mac


def test_verify_answers_what_compare_digest_says(
    tokens: CsrfTokens, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The verdict comes from compare_digest itself, not from an ``==`` beside it."""
    token = tokens.issue(A)
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: False)
    assert not tokens.verify(A, token)


# --- malformed input: False, never an exception ---------------------------------------------


def _valid() -> str:
    return CsrfTokens(SECRET, token_bytes=counting_bytes()).issue(A)


MALFORMED = {
    "none": None,
    "empty": "",
    "dot": ".",
    "no dot": _valid().replace(".", ""),
    "two dots": _valid() + ".",
    "extra dot inside": _valid()[:10] + "." + _valid()[10:],
    "dot at the start": "." + _valid(),
    "short random": _valid()[1:],
    "short mac": _valid()[:-1],
    "long mac": _valid() + "A",
    "padding": _valid() + "=",
    "standard base64 alphabet": _valid().replace("-", "+").replace("_", "/") + "+/",
    "leading space": " " + _valid(),
    "trailing newline": _valid() + "\n",
    "non-ASCII": "é" * 22 + "." + "é" * 43,
    "full-width digits": "\uff11" * 22 + "." + "\uff11" * 43,
    "lone surrogate": "\ud800" * 22 + "." + "A" * 43,
    "NUL": "\x00" * 22 + "." + "A" * 43,
    "10 KB": "A" * 10_240,
    "10 KB with a dot": "A" * 5_000 + "." + "A" * 5_000,
    "only the random part": _valid().split(".")[0],
    "only the mac": _valid().split(".")[1],
    "swapped halves": ".".join(reversed(_valid().split("."))),
}


@pytest.mark.parametrize("token", MALFORMED.values(), ids=MALFORMED.keys())
def test_malformed_tokens_are_refused_without_raising(
    tokens: CsrfTokens, token: str | None
) -> None:
    assert tokens.verify(A, token) is False


@given(st.text(max_size=200))
def test_arbitrary_text_never_raises(token: str) -> None:
    assert CsrfTokens(SECRET).verify(A, token) is False


def test_the_malformed_cases_differ_from_a_valid_token(tokens: CsrfTokens) -> None:
    """Guards the table above: the valid token it is built from does verify."""
    assert tokens.verify(A, _valid())
