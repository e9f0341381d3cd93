"""Prometheus metrics of one server process: security events and the auth check's latency.

Installed by ``velvetrope serve`` when ``VELVETROPE_METRICS_PORT`` is set (the command
serves them on that port, never on the public one; see :mod:`velvetrope.cli.metrics`).
Under ``--workers`` every worker writes its own values to prometheus-client's
multiprocess directory and the command adds them up, so a scrape sees the whole server.

Metrics:

* ``velvetrope_sign_ins_total{way}``: successful sign-ins (``session``, ``token``);
* ``velvetrope_sign_in_failures_total{reason}``: ``invalid_credentials``,
  ``account_disabled``, ``throttled``;
* ``velvetrope_throttled_total{action}``: requests refused for too many attempts
  (``sign_in``, ``sign_up``);
* ``velvetrope_refresh_reuse_total``: rotated refresh tokens presented again (theft);
* ``velvetrope_revocations_total{kind}``: ``session``, ``all_sessions``,
  ``refresh_family``, ``access_token``;
* ``velvetrope_security_events_total{event}``: every security event, by name;
* ``velvetrope_auth_check_seconds``: a histogram of the per-request credential check
  (every way in, accepted or refused).

Events are rare and counted as they come. The check runs on every authenticated
request, so it costs two clock reads and one list increment there; the counts reach
the shared histogram once a second, from the event loop.
"""

from __future__ import annotations

import asyncio
import bisect
from collections.abc import Mapping
from time import perf_counter

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Counter, Histogram

from velvetrope.core.events import EventName
from velvetrope.web.extension import Velvetrope

__all__ = ["CHECK_BUCKETS", "AuthMetrics", "instrument"]

CHECK_BUCKETS = (
    0.000_005,
    0.000_01,
    0.000_025,
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.1,
    0.5,
)
FLUSH_EVERY = 1.0  # seconds

_THROTTLED: dict[str, str] = {"registration_throttled": "sign_up"}
_REVOCATIONS: dict[str, str] = {
    "session_ended": "session",
    "sessions_ended_all": "all_sessions",
    "refresh_family_revoked": "refresh_family",
    "access_token_revoked": "access_token",
}


class AuthMetrics:
    """The metrics of one process; see the module docstring for the names."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        """Args:
        registry: Where the metrics register (default: a registry of their own; under
            ``serve`` the values go to the multiprocess directory either way).
        """
        self.registry = registry = registry or CollectorRegistry()
        ns = "velvetrope"
        self.sign_ins = Counter(
            "sign_ins", "Successful sign-ins", ["way"], namespace=ns, registry=registry
        )
        self.failures = Counter(
            "sign_in_failures",
            "Refused sign-ins, by reason",
            ["reason"],
            namespace=ns,
            registry=registry,
        )
        self.throttled = Counter(
            "throttled",
            "Requests refused for too many attempts",
            ["action"],
            namespace=ns,
            registry=registry,
        )
        self.refresh_reuse = Counter(
            "refresh_reuse",
            "Rotated refresh tokens presented again",
            namespace=ns,
            registry=registry,
        )
        self.revocations = Counter(
            "revocations", "Credentials ended, by kind", ["kind"], namespace=ns, registry=registry
        )
        self.events = Counter(
            "security_events",
            "Security events, by name",
            ["event"],
            namespace=ns,
            registry=registry,
        )
        self.check = Histogram(
            "auth_check_seconds",
            "Time of the per-request credential check",
            namespace=ns,
            buckets=CHECK_BUCKETS,
            registry=registry,
        )
        # Pending observations, one slot per bucket (the last is +Inf), and their sum.
        self._bounds = tuple(self.check._upper_bounds)
        self._pending = [0] * len(self._bounds)
        self._pending_sum = 0.0
        self._flusher: asyncio.TimerHandle | None = None

    def on_event(self, event: EventName, fields: Mapping[str, str | int]) -> None:
        """A :class:`~velvetrope.core.events.SecurityEvents` sink."""
        self.events.labels(event).inc()
        if event == "login_succeeded":
            self.sign_ins.labels("session" if "session" in fields else "token").inc()
        elif event == "login_failed":
            self.failures.labels(str(fields.get("reason", "invalid_credentials"))).inc()
        elif event == "login_throttled":
            self.failures.labels("throttled").inc()
            self.throttled.labels("sign_in").inc()
        elif event.endswith("_throttled"):  # sign-ups, and whatever else is throttled
            self.throttled.labels(_THROTTLED.get(event, event.removesuffix("_throttled"))).inc()
        elif event == "refresh_reuse_detected":
            self.refresh_reuse.inc()
        elif event in _REVOCATIONS:
            self.revocations.labels(_REVOCATIONS[event]).inc()

    def observe_check(self, started: float) -> None:
        """Record a check that began at ``started`` (``perf_counter()``) and just ended."""
        seconds = perf_counter() - started
        self._pending[bisect.bisect_left(self._bounds, seconds)] += 1
        self._pending_sum += seconds
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().call_later(FLUSH_EVERY, self._tick)

    def _tick(self) -> None:
        self.flush()
        self._flusher = None

    def flush(self) -> None:
        """Move the pending observations into the histogram (on the event loop)."""
        pending, total = self._pending, self._pending_sum
        self._pending = [0] * len(self._bounds)
        self._pending_sum = 0.0
        if not any(pending):
            return
        # Histogram.observe takes one value at a time (1.4 us in multiprocess mode);
        # its per-bucket values take a count at once.
        buckets = self.check._buckets
        for index, count in enumerate(pending):
            if count:
                buckets[index].inc(count)
        self.check._sum.inc(total)


def instrument(app: FastAPI) -> AuthMetrics:
    """Count ``app``'s security events and time its credential checks.

    ``app`` is a :func:`~velvetrope.web.app.create_app` app (its ``state.velvetrope``).
    """
    vr: Velvetrope = app.state.velvetrope
    metrics = AuthMetrics()
    vr.service.events.add_sink(metrics.on_event)
    vr.authenticator.timer = metrics.observe_check
    return metrics
