"""The pytest plugin (entry point ``pytest11``: loaded wherever velvetrope is installed).

It does nothing until you ask. With ``velvetrope_test_settings = true`` in your pytest
configuration (``[tool.pytest.ini_options]`` in ``pyproject.toml``), it sets the
variables of :data:`velvetrope.testing.TEST_ENVIRONMENT` (the memory store, the
``https://testserver`` origin, fast hashing), each only if it is not set already,
before pytest imports your ``conftest.py`` files, so an app that builds its
``Velvetrope()`` from the environment at import time gets them. The fixture
``velvetrope_settings`` gives the same settings as an object.
"""

from __future__ import annotations

import os

import pytest

from velvetrope.settings import Settings
from velvetrope.testing import TEST_ENVIRONMENT, settings_for_tests

__all__ = ["velvetrope_settings"]

INI = "velvetrope_test_settings"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        INI,
        type="bool",
        default=False,
        help="velvetrope: set VELVETROPE_* for tests (memory store, https://testserver, "
        "fast hashing) before conftest files load",
    )


@pytest.hookimpl(tryfirst=True)
def pytest_load_initial_conftests(early_config: pytest.Config) -> None:
    if early_config.getini(INI):
        for name, value in TEST_ENVIRONMENT.items():
            os.environ.setdefault(name, value)


@pytest.fixture
def velvetrope_settings() -> Settings:
    """Settings for tests (see :func:`velvetrope.testing.settings_for_tests`)."""
    return settings_for_tests()
