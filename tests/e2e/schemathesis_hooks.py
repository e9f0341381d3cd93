"""Schemathesis hooks for the contract run (loaded through ``SCHEMATHESIS_HOOKS``).

The document states the password policy's lengths exactly (``minLength`` and
``maxLength`` count code points as sent, as the server does), so no case is dropped for
its length: a length the two disagree on fails the run. The rest of the policy (common
passwords, keyboard runs, the address itself) is prose beside a ``not`` pattern, and
schemathesis' coverage phase draws boundary strings such as fifteen zeros without
honouring ``not``. A *positive* case whose new password is guessable is not a valid
request, so it is dropped here by :meth:`PasswordPolicy.guessable`; negative cases and
every other operation are untouched.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from schemathesis.generation import GenerationMode

from velvetrope.core.passwords import PasswordPolicy

_NEW_PASSWORD = {
    "/auth/register": ("password", "email"),
    "/auth/password": ("new_password", ""),
    "/auth/password/reset": ("new_password", ""),
}
_POLICY = PasswordPolicy()


def _guessable(password: object, email: object) -> bool:
    if not isinstance(password, str):
        return False
    return _POLICY.guessable(password, email=email if isinstance(email, str) else "")


@schemathesis.hook
def filter_case(context: Any, case: Any) -> bool:
    """Keep every case but a positive one with a guessable password (never one refused
    for its length)."""
    fields = _NEW_PASSWORD.get(case.operation.path)
    meta = case.meta
    if fields is None or meta is None or meta.generation.mode != GenerationMode.POSITIVE:
        return True
    body = case.body
    if not isinstance(body, dict):
        return True
    password_field, email_field = fields
    return not _guessable(body.get(password_field), body.get(email_field) if email_field else "")
