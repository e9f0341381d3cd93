"""Schemathesis hooks for the contract run (loaded through ``SCHEMATHESIS_HOOKS``).

The document states the whole password policy (lengths and a ``not`` pattern for
one- or two-character passwords, the rest in prose), but schemathesis' coverage phase
draws boundary strings such as fifteen zeros without honouring ``not``. A *positive*
case whose new password the policy refuses is not a valid request, so it is dropped
here by the policy itself; negative cases and every other operation are untouched.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

from velvetrope.core.passwords import PasswordPolicy
from velvetrope.errors import WeakPassword

_NEW_PASSWORD = {
    "/auth/register": ("password", "email"),
    "/auth/password": ("new_password", ""),
    "/auth/password/reset": ("new_password", ""),
}
_POLICY = PasswordPolicy()


def _refused(password: object, email: object) -> bool:
    if not isinstance(password, str):
        return False
    try:
        _POLICY.check(password, email=email if isinstance(email, str) else "")
    except WeakPassword:
        return True
    return False


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Keep every case but a positive one with a password the policy refuses."""
    fields = _NEW_PASSWORD.get(case.operation.path)
    meta = case.meta
    if fields is None or meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    body = case.body
    if not isinstance(body, dict):
        return True
    password_field, email_field = fields
    return not _refused(body.get(password_field), body.get(email_field) if email_field else "")
