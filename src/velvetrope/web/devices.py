"""Devices for people: short descriptions of user agents, and the account page's rows."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

from velvetrope.core.devices import Device
from velvetrope.web.schemas import iso

__all__ = ["DeviceView", "describe_user_agent", "device_view", "when"]

_BROWSERS = (  # order matters: Edge and Opera also say Chrome, Chrome also says Safari
    ("Edge", re.compile(r"\bEdg(?:e|A|iOS)?/(\d+)")),
    ("Opera", re.compile(r"\b(?:OPR|OPiOS)/(\d+)")),
    ("Samsung Internet", re.compile(r"\bSamsungBrowser/(\d+)")),
    ("Firefox", re.compile(r"\b(?:Firefox|FxiOS)/(\d+)")),
    ("Chrome", re.compile(r"\b(?:HeadlessChrome|Chrome|CriOS)/(\d+)")),
    ("Safari", re.compile(r"\bVersion/(\d+)[\d.]* (?:Mobile/\S+ )?Safari/")),
)
_SYSTEMS = (  # iOS says "like Mac OS X", Android says Linux
    ("iOS", re.compile(r"iPhone|iPad|iPod")),
    ("Android", re.compile(r"Android")),
    ("ChromeOS", re.compile(r"\bCrOS\b")),
    ("Windows", re.compile(r"Windows")),
    ("macOS", re.compile(r"Macintosh|Mac OS X")),
    ("Linux", re.compile(r"Linux|X11")),
)
_PRODUCT = re.compile(r"([A-Za-z][A-Za-z0-9._-]{0,39})/v?(\d+)")
_PHONES = frozenset({"iOS", "Android"})


def describe_user_agent(user_agent: str) -> str:
    """A short description of a ``User-Agent`` for people: ``"Chrome 156 on Linux"``.

    Knows the common browsers and systems; any other client is named by its first
    product token (``"curl 8"``), and an empty one is an ``"Unknown device"``.
    """
    browser = next(
        (
            f"{name} {m.group(1)}"
            for name, pattern in _BROWSERS
            if (m := pattern.search(user_agent))
        ),
        None,
    )
    system = next((name for name, pattern in _SYSTEMS if pattern.search(user_agent)), None)
    if browser is None and not user_agent.startswith("Mozilla/"):
        product = _PRODUCT.match(user_agent.strip())
        browser = f"{product.group(1)} {product.group(2)}" if product else None
    if browser is None:
        browser = "Unknown browser" if system else "Unknown device"
    return f"{browser} on {system}" if system else browser


@dataclass(frozen=True, slots=True)
class DeviceView:
    """One device on the account page."""

    handle: str
    name: str
    user_agent: str
    ip: str
    signed_in: str
    signed_in_iso: str
    last_seen: str
    last_seen_iso: str
    current: bool
    phone: bool
    bound: bool


def when(instant: datetime) -> str:
    """An instant for people: ``22 Nov 2026, 06:46 UTC``."""
    return f"{instant.day} {instant:%b %Y, %H:%M} UTC"


def _ago(instant: datetime, now: datetime) -> str:
    seconds = int((now - instant).total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'s' if count > 1 else ''} ago"
    return "just now"


def device_view(device: Device, now: datetime) -> DeviceView:
    """The account page's view of one device."""
    name = describe_user_agent(device.user_agent)
    return DeviceView(
        handle=device.handle,
        name=name,
        user_agent=device.user_agent,
        ip=device.ip or "unknown",
        signed_in=when(device.created_at),
        signed_in_iso=iso(device.created_at),
        last_seen="now"
        if device.current
        else _ago(device.last_seen_at.replace(microsecond=0), now),
        last_seen_iso=iso(device.last_seen_at),
        current=device.current,
        phone=name.endswith(tuple(f" on {s}" for s in _PHONES)),
        bound=device.bound,
    )
