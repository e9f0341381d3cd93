"""A key's use and type checks run once per key, not on every token (the hot path), and
the record of checked keys is bounded (PERF-04: every cache has its bound)."""

from __future__ import annotations

from typing import Any

import pytest

from velvetrope.core.tokens import codec


def _lookup(kid: str, key: Any) -> codec.KeyLookup:
    keys: dict[str, tuple[Any, Any]] = {kid: (key, "EdDSA")}
    return keys.get


def _signed(key: Any, kid: str) -> str:
    return codec.sign_compact({"sub": "u"}, key=key, alg="EdDSA", kid=kid, typ="at+jwt")


def test_a_keys_checks_run_once_and_a_bad_signature_still_fails(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key = codec.generate_jwk("EdDSA")
    algorithm = codec._ALGORITHMS["EdDSA"]
    checks: list[object] = []
    real = algorithm.check_key

    def counted(checked: Any) -> None:
        checks.append(checked)
        real(checked)

    tokens = [_signed(key, "k1") for _ in range(3)]
    monkeypatch.setattr(algorithm, "check_key", counted)  # signing checks it too: after
    lookup = _lookup("k1", key)
    for token in tokens:
        assert codec.decode_compact(token, lookup, typ="at+jwt").claims["sub"] == "u"
    assert checks == [key]  # once, for three tokens
    forged = _signed(codec.generate_jwk("EdDSA"), "k1")  # another key's signature
    with pytest.raises(codec.InvalidToken) as refused:
        codec.decode_compact(forged, lookup, typ="at+jwt")
    assert refused.value.reason == "signature: BadSignatureError"


def test_the_record_of_checked_keys_is_bounded() -> None:
    for i in range(codec.USABLE_KEY_CACHE_SIZE + 10):
        key = codec.generate_jwk("EdDSA")
        codec.decode_compact(_signed(key, f"k{i}"), _lookup(f"k{i}", key), typ="at+jwt")
        assert codec.checked_keys() <= codec.USABLE_KEY_CACHE_SIZE
    assert codec.checked_keys() == codec.USABLE_KEY_CACHE_SIZE
