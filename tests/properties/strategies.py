"""Shared hypothesis settings and strategies for the property tests."""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

__all__ = ["B64URL", "JSON_VALUES", "PROPERTIES", "b64url", "json_objects", "latin1_bytes"]

PROPERTIES = hypothesis_settings(
    max_examples=int(os.environ.get("HYPOTHESIS_MAX_EXAMPLES", "150")),
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
"""Sized for the suite (a few seconds per module on a busy machine)."""

B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

JSON_VALUES: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)


def json_objects(**fixed: st.SearchStrategy[Any]) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects with the ``fixed`` members (drawn, or left out) and any others."""
    extra = st.dictionaries(st.text(max_size=12), JSON_VALUES, max_size=3)
    optional = st.fixed_dictionaries({}, optional=fixed) if fixed else st.just({})
    return st.builds(lambda a, b: {**a, **b}, extra, optional)


def b64url(raw: bytes) -> str:
    """Canonical base64url without padding."""
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def json_bytes(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


latin1_bytes = st.binary(max_size=300) | st.text(
    alphabet=st.characters(max_codepoint=255), max_size=300
).map(lambda t: t.encode("latin-1"))
"""Header values as ASGI hands them over: any bytes (servers pass them unchecked)."""
