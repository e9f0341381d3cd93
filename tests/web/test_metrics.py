"""The metrics of one process: events counted by kind, check timings batched into the
histogram on the event loop (checklist OPS-M1)."""

from __future__ import annotations

import asyncio
from time import perf_counter

import pytest
from prometheus_client import CollectorRegistry

from velvetrope.web import metrics as metrics_module
from velvetrope.web.metrics import AuthMetrics


def _value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    found = registry.get_sample_value(name, labels)
    return 0.0 if found is None else found


def test_OPS_M1_events_are_counted_by_way_reason_and_kind() -> None:
    metrics = AuthMetrics(CollectorRegistry())
    metrics.on_event("login_succeeded", {"user": "u", "session": "h", "ip": ""})
    metrics.on_event("login_succeeded", {"user": "u", "family": "f", "ip": ""})
    metrics.on_event("login_failed", {"email": "e", "ip": "", "reason": "invalid_credentials"})
    metrics.on_event("login_failed", {"user": "u", "ip": "", "reason": "account_disabled"})
    metrics.on_event("login_throttled", {"email": "e", "ip": ""})
    metrics.on_event("registration_throttled", {"ip": ""})
    metrics.on_event("refresh_reuse_detected", {"user": "u", "family": "f", "generation": 2})
    metrics.on_event("sessions_ended_all", {"user": "u", "count": 3})
    metrics.on_event("access_token_revoked", {"user": "u", "family": "f"})
    r = metrics.registry
    assert _value(r, "velvetrope_sign_ins_total", way="session") == 1
    assert _value(r, "velvetrope_sign_ins_total", way="token") == 1
    for reason in ("invalid_credentials", "account_disabled", "throttled"):
        assert _value(r, "velvetrope_sign_in_failures_total", reason=reason) == 1
    assert _value(r, "velvetrope_throttled_total", action="sign_in") == 1
    assert _value(r, "velvetrope_throttled_total", action="sign_up") == 1
    assert _value(r, "velvetrope_refresh_reuse_total") == 1
    assert _value(r, "velvetrope_revocations_total", kind="all_sessions") == 1
    assert _value(r, "velvetrope_revocations_total", kind="access_token") == 1
    assert _value(r, "velvetrope_security_events_total", event="login_failed") == 2


async def test_OPS_M1_check_timings_reach_the_histogram_when_flushed() -> None:
    metrics = AuthMetrics(CollectorRegistry())
    for _ in range(5):
        metrics.observe_check(perf_counter())
    r = metrics.registry
    assert _value(r, "velvetrope_auth_check_seconds_count") == 0  # batched, not yet moved
    metrics.flush()
    assert _value(r, "velvetrope_auth_check_seconds_count") == 5
    assert _value(r, "velvetrope_auth_check_seconds_bucket", le="+Inf") == 5
    assert _value(r, "velvetrope_auth_check_seconds_sum") > 0
    metrics.observe_check(perf_counter() - 10.0)  # slower than every bucket: +Inf only
    metrics.flush()
    assert _value(r, "velvetrope_auth_check_seconds_bucket", le="0.5") == 5
    assert _value(r, "velvetrope_auth_check_seconds_bucket", le="+Inf") == 6


async def test_the_event_loop_flushes_pending_timings_by_itself(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(metrics_module, "FLUSH_EVERY", 0.0)
    metrics = AuthMetrics(CollectorRegistry())
    metrics.observe_check(perf_counter())
    for _ in range(100):
        await asyncio.sleep(0)
        if metrics.registry.get_sample_value("velvetrope_auth_check_seconds_count"):
            break
    assert metrics.registry.get_sample_value("velvetrope_auth_check_seconds_count") == 1
