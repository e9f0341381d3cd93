"""Devices: the places a user is signed in, whatever credential each one holds."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from velvetrope.stores.records import RefreshFamilyRecord, SessionRecord

__all__ = ["Device", "sorted_devices"]


@dataclass(frozen=True, slots=True)
class Device:
    """One signed-in device, as its owner (and an admin) sees it.

    Attributes:
        handle: Public identifier (a session's handle or a token family's id); never
            a credential.
        kind: What the device holds: ``session``, ``tokens``, or the kind a strategy
            of your own reports.
        created_at: When it signed in.
        last_seen_at: Its last recorded activity.
        ip: Client address at sign-in (may be empty).
        user_agent: Client ``User-Agent`` at sign-in (may be empty).
        current: Whether it is the device making the request.
        bound: Whether its credential is bound to a key the device holds: a session
            bound with DBSC, or a token family bound with DPoP.
    """

    handle: str
    kind: str
    created_at: datetime
    last_seen_at: datetime
    ip: str = ""
    user_agent: str = ""
    current: bool = False
    bound: bool = False

    @classmethod
    def of_session(cls, session: SessionRecord) -> Device:
        """The device holding ``session``."""
        return cls(
            handle=session.handle,
            kind="session",
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            ip=session.ip,
            user_agent=session.user_agent,
            bound=session.device_key is not None,
        )

    @classmethod
    def of_family(cls, family: RefreshFamilyRecord) -> Device:
        """The device holding the tokens of refresh family ``family``."""
        return cls(
            handle=family.id,
            kind="tokens",
            created_at=family.created_at,
            last_seen_at=family.last_used_at,
            ip=family.ip,
            user_agent=family.user_agent,
            bound=family.jkt is not None,
        )


def sorted_devices(devices: Iterable[Device], *, current: str | None = None) -> list[Device]:
    """``devices`` oldest first, the one with handle ``current`` marked as such."""
    marked = (dataclasses.replace(d, current=True) if d.handle == current else d for d in devices)
    return sorted(marked, key=lambda d: (d.created_at, d.handle))
