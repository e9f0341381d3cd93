"""Features the lab measures that may not have landed yet, detected at run time.

Each detector answers :class:`Feature` (available, or why not). A cell whose feature is
missing marks its figures "not available" with that reason; it never leaves them out.
When a feature lands, its detector turns true by itself (the module or setting named
below appears) and only the adapter named here needs filling in:

=================  ===========================================  ==============================
feature            detected by                                  adapter to fill in
=================  ===========================================  ==============================
hybrid gateway     ``velvetrope.core.gateway`` importable, or   ``cells/verify.py::gateway_check``
                   a ``gateway_*`` setting                      (verify one internal token) and
                                                                ``cells/hybrid.py::mint_load``
                                                                (mints per session per minute)
DPoP               ``velvetrope.core.dpop`` importable, or a    ``cells/verify.py::dpop_check``
                   ``dpop*`` setting                            and ``cells/theft.py::dpop_replay``
DBSC               ``velvetrope.core.dbsc`` importable, or a    ``cells/theft.py::dbsc_replay``
                   ``dbsc*`` / ``device_binding*`` setting
``serve --workers`` a ``workers`` setting                       ``servers.py::worker_args``
=================  ===========================================  ==============================

Each adapter raises :class:`NotLanded` today; the cell turns that into "not available"
with the detector's reason, so a feature that is detected but whose adapter is still
empty is reported too, never silently skipped.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass

from velvetrope.settings import Settings

__all__ = ["Feature", "NotLanded", "dbsc", "dpop", "gateway", "tool", "workers"]


class NotLanded(Exception):
    """An adapter for a feature that has not landed on this branch."""


@dataclass(frozen=True, slots=True)
class Feature:
    """Whether a feature can be measured here, and why not."""

    name: str
    available: bool
    reason: str = ""


def _module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _setting(*prefixes: str) -> bool:
    return any(f.startswith(prefixes) for f in Settings.model_fields)


def _feature(name: str, present: bool, missing: str) -> Feature:
    return Feature(name, present, "" if present else missing)


def gateway() -> Feature:
    """The hybrid gateway (an edge that swaps a session for an internal JWT)."""
    return _feature(
        "hybrid gateway",
        _module("velvetrope.core.gateway") or _setting("gateway"),
        "the hybrid gateway has not landed in this velvetrope (no velvetrope.core.gateway)",
    )


def dpop() -> Feature:
    """DPoP (RFC 9449) sender-constrained access tokens."""
    return _feature(
        "DPoP",
        _module("velvetrope.core.dpop") or _setting("dpop"),
        "DPoP (RFC 9449) has not landed in this velvetrope (no velvetrope.core.dpop)",
    )


def dbsc() -> Feature:
    """Device Bound Session Credentials for browser sessions."""
    return _feature(
        "DBSC",
        _module("velvetrope.core.dbsc") or _setting("dbsc", "device_binding"),
        "DBSC (device-bound sessions) has not landed in this velvetrope (no velvetrope.core.dbsc)",
    )


def workers() -> Feature:
    """``velvetrope serve --workers N``."""
    return _feature(
        "serve --workers",
        _setting("workers"),
        "`velvetrope serve --workers` has not landed in this velvetrope (no workers setting)",
    )


def tool(name: str, hint: str) -> Feature:
    """An executable on PATH (``hint``: how to install it)."""
    return _feature(name, shutil.which(name) is not None, f"{name} is not installed ({hint})")
