"""The CSRF token format: ``verify`` answers ``True`` only for a token minted for that
binding, and ``False`` (never an exception) for anything else."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tests.properties.strategies import B64URL, PROPERTIES
from velvetrope.core.csrf import CsrfTokens

TOKENS = CsrfTokens(b"k" * 32)
bindings = st.text(max_size=80) | st.text(  # with lone surrogates too
    st.characters(categories=["Cs", "Ll", "Nd"]), max_size=20
)
shaped = st.builds(
    "{}.{}".format,
    st.text(alphabet=B64URL, min_size=22, max_size=22),
    st.text(alphabet=B64URL, min_size=43, max_size=43),
)


@PROPERTIES
@given(bindings, st.none() | st.text(max_size=120) | shaped)
def test_RES_02_any_submitted_value_is_refused_without_an_exception(
    binding: str, submitted: str | None
) -> None:
    assert TOKENS.verify(binding, submitted) is False


@PROPERTIES
@given(bindings, bindings)
def test_RES_02_a_token_verifies_for_its_binding_only(binding: str, other: str) -> None:
    token = TOKENS.issue(binding)
    assert TOKENS.verify(binding, token)
    assert TOKENS.verify(other, token) is (other == binding)


@PROPERTIES
@given(bindings, st.integers(0, 65), st.sampled_from(B64URL + "."))
def test_RES_02_a_token_with_one_character_changed_is_refused(
    binding: str, where: int, character: str
) -> None:
    token = TOKENS.issue(binding)
    changed = token[:where] + character + token[where + 1 :]
    assert TOKENS.verify(binding, changed) is (changed == token)
