"""Features the lab measures, detected at run time, and the tools it measures with.

Each detector answers :class:`Feature` (available, or why not). A cell whose feature is
missing (a branch without it, a build that leaves it out) marks its figures "not
available" with that reason; it never leaves them out. All four have landed on the
main branch, and each has its adapter:

=================== =========================================== ================================
feature             detected by                                 adapter
=================== =========================================== ================================
hybrid gateway      ``velvetrope.core.gateway`` importable, or  ``cells/verify.py::gateway_checks``
                    a ``gateway_*`` setting                     (verify an internal token) and
                                                                ``cells/hybrid.py::mint_load``
                                                                (mints per session per minute)
DPoP                ``velvetrope.core.binding.dpop``            ``cells/verify.py::dpop_check``
                    importable, or a ``dpop*`` setting          and ``cells/theft.py::dpop_replay``
DBSC                ``velvetrope.core.binding.dbsc``            ``cells/theft.py::dbsc_replay``
                    importable, or a ``dbsc*`` /
                    ``device_binding*`` setting
``serve --workers`` a ``workers`` setting                       ``servers.py::worker_args``
=================== =========================================== ================================

An adapter that finds its feature missing raises :class:`NotLanded`; the cell turns
that into "not available" with the detector's reason.
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
        _module("velvetrope.core.binding.dpop") or _setting("dpop"),
        "DPoP (RFC 9449) has not landed in this velvetrope (no velvetrope.core.binding.dpop)",
    )


def dbsc() -> Feature:
    """Device Bound Session Credentials for browser sessions."""
    return _feature(
        "DBSC",
        _module("velvetrope.core.binding.dbsc") or _setting("dbsc", "device_binding"),
        "DBSC (device-bound sessions) has not landed in this velvetrope "
        "(no velvetrope.core.binding.dbsc)",
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
