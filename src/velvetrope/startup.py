"""What velvetrope checks before it starts anything, so each failure is one sentence.

``velvetrope serve`` and every command run these, and so does a
:class:`~velvetrope.Velvetrope` built from the environment in your own app
(:func:`settings_from_environment`; a store failure at start-up is described with
:func:`describe_store_failure`):

* ``.env``: present but unreadable (a directory, a broken link, not UTF-8, no
  permission) stops the command with the reason; pydantic-settings would otherwise
  ignore it silently or print a traceback.
* ``VELVETROPE_*`` variables (in the environment or ``.env``) that name no setting are
  warned about, with the nearest valid name: a misspelt setting is otherwise ignored.
* A store that cannot be reached is named (Redis or PostgreSQL, where, and why).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from urllib.parse import urlsplit

from dotenv import dotenv_values
from pydantic import ValidationError

from velvetrope.errors import ConfigurationError, StoreUnavailable
from velvetrope.settings import Settings, describe_validation_error
from velvetrope.stores.registry import describe_database_url

__all__ = [
    "DOTENV",
    "PREFIX",
    "describe_store_failure",
    "dotenv_problem",
    "settings_from_environment",
    "unknown_variables",
]

DOTENV = Path(".env")
PREFIX = "VELVETROPE_"
# Read by velvetrope, though not settings of the server.
_OTHER_VARIABLES = frozenset({"VELVETROPE_LAB_DEBUG"})


def dotenv_problem(path: Path = DOTENV) -> str | None:
    """Why ``path`` cannot be read as a ``.env`` file, or ``None`` (absent counts as fine)."""
    if path.is_symlink() and not path.exists():
        return f"{path} is a link to {os.readlink(path)}, which does not exist"
    if not path.exists():
        return None
    if path.is_dir():
        return f"{path} is a folder, not a file of VELVETROPE_*=value lines"
    problem = None
    try:
        path.read_bytes().decode("utf-8")
    except OSError as exc:
        problem = f"cannot read {path}: {exc.strerror or exc}"
    except UnicodeDecodeError as exc:
        problem = f"{path} is not UTF-8 text (byte {exc.start} is not valid)"
    return problem


def known_variables() -> frozenset[str]:
    """Every ``VELVETROPE_*`` name velvetrope reads."""
    return frozenset(PREFIX + name.upper() for name in Settings.model_fields) | _OTHER_VARIABLES


def unknown_variables(
    environ: Mapping[str, str] | None = None, dotenv: Path | None = DOTENV
) -> list[str]:
    """One warning per ``VELVETROPE_*`` variable that names no setting, with the nearest
    valid name where one is close; ``.env`` is read too when it is there."""
    names: dict[str, str] = {}
    for name in os.environ if environ is None else environ:
        names.setdefault(name.upper(), "the environment")
    if dotenv is not None and dotenv.is_file() and dotenv_problem(dotenv) is None:
        for name in dotenv_values(dotenv):
            names.setdefault(name.upper(), str(dotenv))
    known = known_variables()
    return [
        _warning(name, where, known)
        for name, where in sorted(names.items())
        if name.startswith(PREFIX) and name not in known
    ]


def settings_from_environment(warn: Callable[[str], object]) -> Settings:
    """``Settings()`` from ``VELVETROPE_*`` and ``.env``, with the command line's checks:
    each variable that names no setting is passed to ``warn``.

    Raises:
        ConfigurationError: ``.env`` cannot be read, or a variable is invalid (one
            sentence naming it, not pydantic's report).
    """
    problem = dotenv_problem()
    if problem is not None:
        raise ConfigurationError(problem)
    for warning in unknown_variables():
        warn(warning)
    try:
        return Settings()
    except ValidationError as exc:
        raise ConfigurationError(describe_validation_error(exc)) from None


def _warning(name: str, where: str, known: Iterable[str]) -> str:
    # Compared without the prefix every name shares, which would make anything "close".
    suffixes = sorted(k.removeprefix(PREFIX) for k in known)
    close = difflib.get_close_matches(name.removeprefix(PREFIX), suffixes, n=1, cutoff=0.6)
    hint = f"; did you mean {PREFIX}{close[0]}?" if close else " (ignored)"
    return f"{name} (in {where}) is not a velvetrope setting{hint}"


def describe_store_failure(exc: StoreUnavailable, settings: Settings | None = None) -> str:
    """One sentence: which store could not be reached, where, and why."""
    cause = _root_cause(exc)
    if exc.detail.startswith("Redis"):
        where = "" if settings is None or settings.redis_url is None else _redis_at(settings)
        return f"cannot reach Redis{where}: {cause or exc.detail} (is it running?)"
    if exc.detail.startswith("PostgreSQL") or "PostgreSQL" in exc.detail:
        where = "" if settings is None else f" ({describe_database_url(settings.database_url)})"
        return f"cannot reach PostgreSQL{where}: {cause or exc.detail}"
    return exc.detail


def _redis_at(settings: Settings) -> str:
    assert settings.redis_url is not None  # noqa: S101 - checked by the caller
    parts = urlsplit(settings.redis_url)  # never the user or password
    return f" at {parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"


def _root_cause(exc: BaseException) -> str:
    """The message of the innermost cause that has one (a driver's own words)."""
    found = ""
    seen: set[int] = set()
    current: BaseException | None = exc.__cause__ or exc.__context__
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        text = str(current).strip()
        if text:
            found = text.splitlines()[0]
        current = current.__cause__ or current.__context__
    return found
