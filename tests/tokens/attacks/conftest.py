"""Attack fixtures: genuine EdDSA and ES256 tokens to mutate, on the memory backend
(tests whose outcome depends on stored state are marked ``every_backend``)."""

from __future__ import annotations

import pytest

from tests.tokens.attacks.helpers import forger_on
from tests.tokens.conftest import Forger, ServiceFactory, make_forger
from velvetrope import AuthService


@pytest.fixture
async def forger(service: AuthService, user_email: str) -> Forger:
    """A genuine EdDSA access token of ``user_email`` (the default algorithm), to mutate."""
    return await make_forger(service, user_email)


@pytest.fixture
async def es256_forger(make_service: ServiceFactory) -> Forger:
    """A genuine ES256 access token on a service of its own (same store), to mutate."""
    return await forger_on(await make_service(algorithm="ES256"))
