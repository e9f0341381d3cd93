"""One judging rule per claim: the figures it reads, what it says was measured, and the
verdict those numbers give.

A rule raises :class:`Missing` (with the figure's reason) when a figure it needs was not
measured; the claim is then "not measured" with that reason, never guessed. The
thresholds are stated in the rules: "faster" means a lower p50 by more than the rounds'
spread would explain (10 %), "~51x" holds between 40x and 65x.

Observed behaviour (a browser reading a token, a replay accepted) is read from the
counts its figure keeps in ``extra`` (:meth:`Readings.seen`, :meth:`Readings.answer`),
never from its words: each rule picks its verdict from what was observed, so a run
that sees otherwise gets another verdict.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["JUDGES", "Missing", "Readings"]

Verdict = tuple[str, str, str]  # (measured here, verdict word, verdict in a sentence)
SAME = 0.10  # relative difference within which two costs count as equal
SOON_MS = 100.0  # two revocations this close count as equally fast (one feed poll)
AT_ONCE_MS = 1_000.0  # a revocation within a second counts as immediate
SLOW_READ_US = 1_000.0  # a storage read this slow (1/16 of a 60 Hz frame) slows an app


class Missing(Exception):
    """A figure a rule needs was not measured."""


class Readings:
    """The figures of a run, by cell id and key."""

    def __init__(self, cells: list[dict[str, Any]]) -> None:
        self._figures: dict[tuple[str, str], dict[str, Any]] = {
            (cell["id"], figure["key"]): figure for cell in cells for figure in cell["figures"]
        }
        self._cells = {cell["id"] for cell in cells}

    def figure(self, cell: str, key: str) -> dict[str, Any]:
        """The measured figure, or :class:`Missing` with the reason."""
        found = self._figures.get((cell, key))
        if found is None:
            raise Missing(
                f"cell {cell} was not run"
                if cell not in self._cells
                else f"{cell}/{key} is not in this run's matrix (a full run measures it)"
            )
        if found["status"] != "measured":
            raise Missing(str(found["reason"]))
        return found

    def value(self, cell: str, key: str) -> float:
        """The figure's value."""
        return float(self.figure(cell, key)["value"])

    def number(self, cell: str, key: str, name: str) -> float:
        """One of the figure's extra numbers."""
        return float(self.figure(cell, key)["extra"][name])

    def outcome(self, cell: str, key: str) -> str:
        """What the figure observed, in words."""
        return str(self.figure(cell, key)["outcome"])

    def seen(self, cell: str, key: str, name: str) -> bool:
        """Whether every trial of the figure saw ``name`` (``readable``, ``accepted``,
        ...); ``False`` when none did.

        Raises:
            Missing: The figure was not measured, does not count ``name`` (a run of an
                older lab), or its trials disagreed.
        """
        figure = self.figure(cell, key)
        count = figure.get("extra", {}).get(name)
        if count is None:
            raise Missing(f"{cell}/{key} does not count '{name}': rerun the lab")
        trials = int(figure["value"])
        if int(count) == trials:
            return True
        if int(count) == 0:
            return False
        raise Missing(f"{cell}/{key}: trials disagreed ({int(count)} of {trials} {name})")

    def answer(self, cell: str, key: str) -> str:
        """``accepted`` (every trial got 200) or ``refused`` (every trial 401 or 403).

        Raises:
            Missing: Not measured, trials disagreed, or another status came back.
        """
        if self.seen(cell, key, "accepted"):
            return "accepted"
        if self.seen(cell, key, "refused"):
            return "refused"
        raise Missing(f"{cell}/{key}: neither accepted nor refused ({self.outcome(cell, key)})")

    def first(self, cell: str, *keys: str) -> tuple[str, float]:
        """The first of ``keys`` that was measured, and its value."""
        reasons = []
        for key in keys:
            try:
                return key, self.value(cell, key)
            except Missing as exc:
                reasons.append(str(exc))
        raise Missing(reasons[0] if reasons else "no figure")

    def optional(self, cell: str, key: str) -> float | None:
        """The value, or ``None``."""
        try:
            return self.value(cell, key)
        except Missing:
            return None


def us(v: float) -> str:
    """Microseconds, readable."""
    return f"{v:,.1f} µs" if v < 100 else f"{v:,.0f} µs"


def ms(v: float) -> str:
    """Milliseconds, readable."""
    return f"{v:,.1f} ms" if v < 100 else f"{v:,.0f} ms"


def _size(r: Readings) -> Verdict:
    session = r.value("wire", "session.request")
    jwt = r.value("wire", "jwt.EdDSA.request")
    rs = r.value("wire", "jwt.RS256.request")
    ratio, rs_ratio = jwt / session, rs / session
    measured = (
        f"session cookie header {session:.0f} B; EdDSA bearer header {jwt:.0f} B "
        f"({ratio:.1f}x), RS256 {rs:.0f} B ({rs_ratio:.1f}x); the 2017 post's 6 B cookie vs "
        f"304 B JWT was 50.7x"
    )
    if 40 <= ratio <= 65:
        return measured, "holds", f"{ratio:.1f}x here, close to ~51x."
    return (
        measured,
        "does not hold",
        (
            f"velvetrope's real cookie vs the tokens it issues: {ratio:.1f}x (EdDSA) to "
            f"{rs_ratio:.1f}x (RS256), not ~51x; the 51x compared a 6-byte unsigned user id, "
            f"which no session should be. More bytes, yes: {jwt - session:.0f} B more per request."
        ),
    )


def _cpu(r: Readings) -> Verdict:
    cold = r.value("verify", "jwt.EdDSA.cold")
    warm = r.value("verify", "jwt.EdDSA.warm")
    _key, local = r.first("verify", "session.memory", "session.sqlite")
    idle = r.value("loop", "probe.idle")
    jwt_cold = r.value("loop", "probe.jwt-cold")
    sessions = r.value("loop", "probe.sessions")
    cold_p50 = r.number("loop", "probe.jwt-cold", "p50")
    sessions_p50 = r.number("loop", "probe.sessions", "p50")
    measured = (
        f"cold EdDSA check {us(cold)} vs in-memory session lookup {us(local)} and cached JWT "
        f"{us(warm)}; a cheap endpoint on the same loop, p50/p99: alone p99 {ms(idle)}, "
        f"{ms(cold_p50)}/{ms(jwt_cold)} while the loop verified cold JWTs, "
        f"{ms(sessions_p50)}/{ms(sessions)} while it looked sessions up"
    )
    heavier = cold > local * (1 + SAME)
    if heavier and cold_p50 > sessions_p50 * (1 + SAME):
        why = (
            f"tokens arrive cold: a signature costs {cold / local:.0f}x a session lookup and the "
            f"cheap endpoint's median rose {cold_p50 / sessions_p50:.1f}x over session load; "
            f"a cached token ({us(warm)}) costs no more than a lookup."
        )
        return measured, "holds only when", why
    if heavier:
        why = (
            f"counted per check ({cold / local:.0f}x a lookup); on this loop the cheap endpoint "
            "was no slower under cold JWTs than under session lookups."
        )
        return measured, "holds only when", why
    return measured, "does not hold", "a cold verification was no dearer than a session lookup."


def _performance(r: Readings) -> Verdict:
    cold = r.value("verify", "jwt.EdDSA.cold")
    warm = r.value("verify", "jwt.EdDSA.warm")
    lookups = [
        (name, value)
        for name, key in (
            ("memory", "session.memory"),
            ("SQLite", "session.sqlite"),
            ("Redis", "session.redis"),
            ("Redis + near-cache", "session.redis-cache"),
            ("PostgreSQL", "session.postgres"),
            ("PostgreSQL + near-cache", "session.postgres-cache"),
        )
        if (value := r.optional("verify", key)) is not None
    ]
    if not lookups:
        raise Missing("no session lookup was measured")
    shown = ", ".join(f"{name} {us(value)}" for name, value in lookups)
    measured = f"p50: JWT cold {us(cold)}, warm {us(warm)}; session lookup: {shown}"
    slower = [name for name, value in lookups if value * (1 + SAME) < cold]
    faster = [name for name, value in lookups if value > cold * (1 + SAME)]
    if not faster:
        why = (
            f"a cold JWT check ({us(cold)}) was slower than every session lookup measured here "
            f"({', '.join(slower) or 'none faster'}); a cached one ({us(warm)}) about equal."
        )
        return measured, "does not hold", why
    why = (
        f"the session is read across the network on every request ({', '.join(faster)}); "
        f"a cold JWT check lost to {', '.join(slower) or 'no lookup'}, and a cached token "
        f"({us(warm)}) ties with the near-cache."
    )
    return measured, "holds only when", why


def _verification(r: Readings) -> Verdict:
    cold = r.value("verify", "jwt.EdDSA.signature")
    memory = r.value("verify", "session.memory")
    return (
        f"EdDSA signature check {us(cold)}; session lookup in memory {us(memory)}",
        "holds",
        "that is what each does; the per-request cost of each is in the row above.",
    )


def _spread_note(r: Readings, *keys: tuple[str, str]) -> str:
    """A warning when rounds disagree by more than a quarter (a busy machine)."""
    for cell, key in keys:
        stats = r.figure(cell, key).get("stats")
        if stats and stats["spread_max"] > 1.25 * max(stats["spread_min"], 1e-9):
            return " The rounds spread widely here: rerun on a quiet machine before trusting it."
    return ""


def _scales(r: Readings) -> Verdict:
    session = r.value("http", "session.sqlite.n3")
    one = r.optional("http", "session.sqlite.n1") or r.value("http", "session.memory.w1")
    jwt = r.optional("http", "jwt.sqlite.n3")
    redis = r.optional("http", "session.redis.n3")
    redis_jwt = r.optional("http", "jwt.redis.n3")
    refused = r.optional("http", "session.memory.n3")
    share = r.number("http", "session.memory.n3", "refused_share") if refused else None
    measured = (
        f"sessions on a shared SQLite store: {one:,.0f} req/s on 1 node, "
        f"{session:,.0f} on 3 behind nginx"
        + (f" (JWT {jwt:,.0f})" if jwt else "")
        + (
            f"; on Redis, 3 nodes: sessions {redis:,.0f}, JWT {redis_jwt:,.0f}"
            if redis and redis_jwt
            else ""
        )
        + (
            f"; per-process memory stores on 3 nodes: {share:.0%} refused"
            if share is not None
            else ""
        )
    )
    note = _spread_note(r, ("http", "session.sqlite.n3"))
    both = (
        f"both ways in need a shared store here (per-process stores refused {share:.0%} of "
        "either); "
        if share is not None
        else ""
    )
    if not jwt:
        raise Missing("JWTs behind nginx on 3 nodes are measured in a full run")
    slower = session < jwt * (1 - SAME)
    needs_store = share is None or share > 0  # unknown: assume what the claim says
    jwt_refused = r.optional("http", "jwt.memory.n3")
    jwt_needs = bool(jwt_refused) and r.number("http", "jwt.memory.n3", "refused_share") > 0
    if slower:
        why = (
            "'less scalable' means less throughput per node: "
            + both
            + f"with one, sessions reached {session / jwt:.0%} of JWT's throughput across 3 "
            "nodes on SQLite"
            + (f", {redis / redis_jwt:.0%} on Redis (near-cache)" if redis and redis_jwt else "")
            + "."
            + note
        )
        return measured, "holds" if needs_store and not jwt_needs else "holds only when", why
    why = (
        f"with a shared store sessions kept up with JWTs ({session / jwt:.0%} of JWT's "
        f"throughput on 3 nodes; {session / one:.2f}x their own on 1 node)" + note
    )
    if needs_store:
        return measured, "holds only when", "the session store is per process: " + both + why
    return measured, "does not hold", why


def _shared_storage(r: Readings) -> Verdict:
    share = r.number("http", "session.memory.n3", "refused_share")
    shared = r.value("http", "session.sqlite.n3")
    jwt_share = r.optional("http", "jwt.memory.n3")
    measured = (
        f"3 nodes with per-process (memory) stores refused {share:.0%} of session requests; "
        f"with a shared store, {shared:,.0f} req/s and none refused"
        + (
            "; JWTs with per-process keys fared the same "
            f"({r.number('http', 'jwt.memory.n3', 'refused_share'):.0%} refused)"
            if jwt_share
            else ""
        )
    )
    if share <= 0:
        return (
            measured,
            "does not hold",
            "per-process stores refused no session request on 3 nodes here.",
        )
    return (
        measured,
        "holds",
        (
            "without shared storage sessions do not survive a second node; with it, they scale. "
            "Velvetrope's JWTs need shared storage too (keys, revocations, refresh families)."
        ),
    )


def _storage(r: Readings) -> Verdict:
    key, family = r.first("footprint", "family.sqlite.100000", "family.sqlite.800")
    session = r.value("footprint", key.replace("family", "session"))
    measured = (
        f"per signed-in device: a session takes {session:,.0f} B in SQLite; a JWT client's "
        f"refresh family {family:,.0f} B"
    )
    if family < session / 2:
        return measured, "holds", "a JWT client left far less on the server than a session."
    return (
        measured,
        "holds only when",
        "tokens can neither be refreshed nor revoked: velvetrope's JWT clients leave a refresh "
        f"family on the server, {family / session:.0%} of a session's size.",
    )


def _client_stores(r: Readings) -> Verdict:
    read = r.outcome("browser", "xss.localstorage")
    cookie = r.outcome("browser", "xss.httponly")
    measured = f"token in localStorage: {read}; HttpOnly session cookie: {cookie}"
    if not r.seen("browser", "xss.localstorage", "readable"):
        return measured, "holds only when", "the token could not be read back from localStorage."
    return (
        measured,
        "holds",
        "both places are used; they differ in who can read them (see the localStorage rows).",
    )


def _format(r: Readings) -> Verdict:
    parts = r.value("wire", "jwt.parts")
    chars = r.value("wire", "session.id_chars")
    measured = (
        f"access token: {parts:.0f} base64url segments (header.payload.signature); session "
        f"ID: {chars:.0f} random base64url characters ({int(chars * 6) // 8 * 8} bits)"
    )
    if parts != 3:
        return measured, "does not hold", "the access token is not header.payload.signature."
    return measured, "holds", "as described."


def _flow(r: Readings) -> Verdict:
    bearer = r.value("wire", "jwt.EdDSA.request")
    cookie = r.optional("wire", "jwt.EdDSA.cookie_request")
    if cookie is None:
        return (
            f"velvetrope takes the JWT in an Authorization header ({bearer:.0f} B)",
            "holds",
            "as described.",
        )
    measured = (
        f"velvetrope takes the JWT in an Authorization header ({bearer:.0f} B) or in an "
        f"HttpOnly cookie (jwt-cookie mode, {cookie:.0f} B)"
    )
    return (
        measured,
        "holds only when",
        "read as a convention: the transport is independent of the credential.",
    )


def _security(r: Readings) -> Verdict:
    cookie = r.outcome("browser", "cross-site.cookie")
    riding = r.outcome("browser", "xss.session-riding")
    measured = (
        f"cross-site fetch with the SameSite=Lax cookie: {cookie}; a script on the page: {riding}"
    )
    if r.answer("browser", "cross-site.cookie") == "accepted":
        return (
            measured,
            "does not hold",
            "the SameSite=Lax session cookie went with a cross-site request and was accepted: "
            "the same-origin rule did not protect it.",
        )
    return (
        measured,
        "holds only when",
        "read as 'any cookie credential': a session cookie is exactly as ambient as a JWT "
        "cookie, and velvetrope gives both the same CSRF checks; SameSite=Lax kept the cookie "
        "off a cross-site request here.",
    )


def _revocation_figures(r: Readings) -> tuple[str, float, str, float, float, float]:
    skey, session = r.first("revocation", "session.redis", "session.sqlite")
    jkey, jwt = r.first("revocation", "jwt.redis", "jwt.sqlite")
    plain = r.value("revocation", "plain-jwt")
    lifetime = r.number("revocation", "plain-jwt", "lifetime_s")
    return skey, session, jkey, jwt, plain, lifetime


def _delivery(key: str) -> str:
    return "revocation epoch read per request" if key.endswith("sqlite") else "pushed"


def _revocation_text(r: Readings) -> str:
    skey, session, jkey, jwt, plain, lifetime = _revocation_figures(r)
    polled = r.optional("revocation", "jwt.sqlite") if jkey != "jwt.sqlite" else None
    return (
        f"sign-out to refusal on another node: session ({skey.split('.')[1]}) {ms(session)}, "
        f"velvetrope JWT ({jkey.split('.')[1]}, {_delivery(jkey)}) {ms(jwt)}"
        + (f", velvetrope JWT (sqlite, {_delivery('sqlite')}) {ms(polled)}" if polled else "")
        + f"; a plain JWT with no denylist {plain:.1f} s with a {lifetime:.0f} s lifetime: its "
        "whole remaining lifetime (up to 900 s with the default lifetime)"
    )


def _jwt_as_fast(r: Readings) -> bool:
    """Whether velvetrope's JWT was refused after sign-out about as fast as a session
    (within 10 % or :data:`SOON_MS`)."""
    _skey, session, _jkey, jwt, _plain, _lifetime = _revocation_figures(r)
    return jwt <= session * (1 + SAME) or jwt - session <= SOON_MS


def _logout(r: Readings) -> Verdict:
    measured = _revocation_text(r)
    if not _jwt_as_fast(r):
        return (
            measured,
            "holds",
            "even with velvetrope's denylist and feed a signed-out JWT was refused on another "
            "node markedly later than a deleted session.",
        )
    return (
        measured,
        "holds only when",
        (
            "the JWT has no denylist: velvetrope's revocation feed refused a signed-out JWT on "
            "another node within the time shown; sessions need no feed."
        ),
    )


def _invalidate(r: Readings) -> Verdict:
    _skey, _session, _jkey, jwt, plain, _lifetime = _revocation_figures(r)
    if jwt / 1000 >= plain:
        return (
            _revocation_text(r),
            "holds",
            "velvetrope's denylisted JWT was refused no sooner than one left to expire.",
        )
    return (
        _revocation_text(r),
        "holds only when",
        (
            "nothing checks revocation: a plain JWT was accepted until it expired, velvetrope's "
            "was refused within the time shown."
        ),
    )


def _revoke_harder(r: Readings) -> Verdict:
    check = r.value("verify", "jwt.revocation")
    measured = _revocation_text(r) + f"; the denylist check costs {us(check)} per request"
    if not _jwt_as_fast(r):
        return (
            measured,
            "holds",
            "a JWT needs the denylist and its feed, and even with them revocation took effect "
            "markedly later than deleting a session.",
        )
    return (
        measured,
        "holds only when",
        "counting work, not effect: a JWT needs the denylist and its feed; with them, "
        "revocation took effect about as fast as deleting a session.",
    )


def _session_invalidate(r: Readings) -> Verdict:
    key, session = r.first("revocation", "session.redis", "session.sqlite")
    measured = (
        f"a deleted session was refused on another node {ms(session)} after sign-out "
        f"({key.split('.')[1]})"
    )
    if session > AT_ONCE_MS:
        return (
            measured,
            "holds only when",
            f"a wait is acceptable: other nodes refused the deleted session after {ms(session)}.",
        )
    return measured, "holds", "deleting the session ends it everywhere."


def _expiration(r: Readings) -> Verdict:
    lifetime = r.value("wire", "jwt.lifetime")
    measured = (
        f"access tokens carry exp (lifetime {lifetime:.0f} s); sessions end at deadlines the "
        "server keeps (30 min idle, 12 h absolute by default)"
    )
    if lifetime <= 0:
        return measured, "does not hold", "the access token's exp is not after its iat."
    return measured, "holds", "as described; velvetrope sets both from its settings."


def _ideal(r: Readings) -> Verdict:
    bearer = r.outcome("browser", "cross-site.bearer")
    return (
        f"a bearer header from another site's page: {bearer}",
        "not a measurable claim",
        "advice, not a fact; what bears on it is measured in the rows on cross-site use, "
        "cost and revocation.",
    )


def _no_network(r: Readings) -> Verdict:
    cold = r.value("verify", "jwt.EdDSA.cold")
    redis = r.value("verify", "session.redis")
    measured = (
        f"a cold JWT check needed no store round trip ({us(cold)}); an uncached Redis session "
        f"lookup {us(redis)}"
    )
    if cold > redis * (1 + SAME):
        return (
            measured,
            "does not hold",
            "skipping the network did not pay here: the signature check cost more than a "
            "Redis round trip.",
        )
    return (
        measured,
        "holds only when",
        "revocation is not needed at once: without a network check a revoked token is "
        "accepted until a denylist reaches the verifier (velvetrope takes a push, or on "
        "SQLite reads a shared revocation epoch on every request).",
    )


def _claims(r: Readings) -> Verdict:
    tampered = r.outcome("theft", "bearer.tampered")
    readable = r.outcome("wire", "jwt.claims_readable")
    measured = f"a token with an edited sub: {tampered}; its claims are {readable}"
    if r.answer("theft", "bearer.tampered") == "accepted":
        return measured, "does not hold", "a token with an edited claim was accepted."
    return (
        measured,
        "holds",
        "claims cannot be changed without the key, though anyone holding the token can read them.",
    )


def _encrypted(r: Readings) -> Verdict:
    readable = r.outcome("wire", "jwt.claims_readable")
    measured = f"the access token's payload decodes without any key: {readable}"
    if r.value("wire", "jwt.claims_readable") < 1:
        return measured, "holds", "no claim could be read without a key."
    return (
        measured,
        "does not hold",
        "velvetrope's JWTs (like most) are signed, not encrypted: keep secrets out of claims.",
    )


def _localstorage_js(r: Readings) -> Verdict:
    measured = f"an injected script: {r.outcome('browser', 'xss.localstorage')}"
    if not r.seen("browser", "xss.localstorage", "readable"):
        return measured, "does not hold", "the injected script could not read the token."
    return measured, "holds", "any script on the page read the token."


def _httponly(r: Readings) -> Verdict:
    cookie = r.outcome("browser", "xss.httponly")
    riding = r.outcome("browser", "xss.session-riding")
    measured = (
        f"the HttpOnly cookie: {cookie}; a credentialed request from the same script: {riding}"
    )
    if r.seen("browser", "xss.httponly", "readable"):
        return measured, "does not hold", "the injected script read the session cookie."
    if r.answer("browser", "xss.session-riding") == "refused":
        return measured, "holds", "the script could neither read the cookie nor use it."
    return (
        measured,
        "holds only when",
        "'never accessible' means 'never readable': the script cannot steal the cookie but "
        "can still use it while it runs (session riding).",
    )


def _workers(r: Readings) -> Verdict:
    measured = f"in a web worker: {r.outcome('browser', 'worker.localstorage')}"
    if r.seen("browser", "worker.localstorage", "available"):
        return measured, "does not hold", "a web worker could use localStorage here."
    return measured, "holds", "workers have no localStorage."


def _sync(r: Readings) -> Verdict:
    read = r.value("browser", "localstorage.read")
    measured = f"one synchronous getItem of the token: {us(read)} in Chromium"
    if read >= SLOW_READ_US:
        return (
            measured,
            "holds",
            f"a read blocks the page for {ms(read / 1000)}, a visible share of a frame.",
        )
    return (
        measured,
        "holds only when",
        f"read as 'synchronous': it is, but a token read costs well under {us(SLOW_READ_US)}; "
        "it does not slow an app down measurably.",
    )


def _string_only(r: Readings) -> Verdict:
    back = r.outcome("browser", "localstorage.object")
    measured = f"an object stored in localStorage read back as {back}"
    if not r.seen("browser", "localstorage.object", "string"):
        return measured, "does not hold", "localStorage gave back something other than a string."
    return (
        measured,
        "holds",
        "values are strings (objects need JSON); a JWT is a string already, so this costs "
        "it nothing.",
    )


def _session_cookie(r: Readings) -> Verdict:
    measured = f"the session cookie a sign-in set: {r.outcome('theft', 'cookie.persistence')}"
    if r.seen("theft", "cookie.persistence", "persistent"):
        return (
            measured,
            "holds only when",
            "the server sets no Max-Age or Expires: velvetrope's sign-in set a persistent cookie "
            "(its session's deadline), which outlives a browser restart.",
        )
    return (
        measured,
        "holds",
        "no Max-Age or Expires: the browser drops the cookie when it closes (unless it restores "
        "its session); the server ends the session at its own deadlines either way.",
    )


def _hybrid_pressure(r: Readings) -> Verdict:
    rates = [
        (rate, cached, uncached)
        for rate in (1, 10, 100)
        if (cached := r.optional("hybrid", f"mints.cache.{rate}")) is not None
        and (uncached := r.optional("hybrid", f"mints.nocache.{rate}")) is not None
    ]
    if not rates:
        r.value("hybrid", "mints.cache.100")  # raises Missing with the reason
        raise Missing("no mint rate was measured with and without the cache")
    measured = "mints per session per minute: " + "; ".join(
        f"at {rate} req/s {cached:,.0f} with the mint cache, {uncached:,.0f} without"
        for rate, cached, uncached in rates
    )
    rate, cached, uncached = rates[-1]
    if uncached < rate * 60 / 2:
        return (
            measured,
            "does not hold",
            f"even without the mint cache the gateway minted less than once per two requests "
            f"({uncached:,.0f} for {rate * 60:,} requests a minute).",
        )
    if cached >= uncached * (1 - SAME):
        return measured, "holds", "the mint cache did not lower the mints: one per request."
    return (
        measured,
        "holds only when",
        f"the gateway has no mint cache: without one it minted per request ({uncached:,.0f} a "
        f"minute at {rate} req/s); with it, {cached:,.0f} a minute, one per token lifetime.",
    )


def _libraries(_r: Readings) -> Verdict:
    return (
        "not measured: an opinion on effort",
        "not a measurable claim",
        "libraries exist for both; velvetrope implements both behind one API.",
    )


def _bound_answer(r: Readings, key: str) -> tuple[str, str | None]:
    """The bound replay in words, and ``accepted``/``refused`` when it was measured."""
    try:
        return r.outcome("theft", key), r.answer("theft", key)
    except Missing as exc:
        return f"not measured ({exc})", None


def _stolen(r: Readings) -> Verdict:
    bearer = r.outcome("theft", "bearer.unbound")
    bound, bound_answer = _bound_answer(r, "bearer.dpop")
    _skey, _session, _jkey, jwt, plain, _life = _revocation_figures(r)
    measured = f"a stolen token replayed by another client: {bearer}; bound with DPoP: {bound}"
    if r.answer("theft", "bearer.unbound") == "refused":
        return measured, "does not hold", "another client's replay of the token was refused."
    limits = []
    if jwt / 1000 < plain:
        limits.append(f"not revoked (a sign-out refused it within {ms(jwt)})")
    if bound_answer == "refused":
        limits.append("not bound (DPoP binding refused the replay itself)")
    if not limits:
        return measured, "holds", "the replayed token was accepted, bound or not."
    return measured, "holds only when", "the token is " + " and ".join(limits) + "."


def _hijack(r: Readings) -> Verdict:
    cookie = r.outcome("theft", "cookie.unbound")
    bound, bound_answer = _bound_answer(r, "cookie.dbsc")
    measured = (
        f"a stolen session cookie replayed by another client: {cookie}; bound with DBSC: {bound}"
    )
    if r.answer("theft", "cookie.unbound") == "refused":
        return measured, "does not hold", "another client's replay of the cookie was refused."
    if bound_answer == "refused":
        return (
            measured,
            "holds only when",
            "the session is not bound to the device: DBSC refused the replayed cookie.",
        )
    return (
        measured,
        "holds",
        "an unbound session cookie is as good as a stolen token: whoever holds it is in.",
    )


def _bloat(r: Readings) -> Verdict:
    added = r.number("wire", "jwt.EdDSA.claims.request", "added")
    plain = r.value("wire", "jwt.EdDSA.request")
    measured = (
        f"adding roles and department to the token: +{added:.0f} B on every request "
        f"({plain:.0f} B → {plain + added:.0f} B)"
    )
    if added <= 0:
        return measured, "does not hold", "the added claims did not make the request larger."
    return (
        measured,
        "holds",
        "every claim travels with every request; a session keeps them on the server.",
    )


def _multiple_devices(r: Readings) -> Verdict:
    cookie = r.outcome("browser", "cross-site.cookie")
    bearer = r.outcome("browser", "cross-site.bearer")
    measured = f"from another site: with the cookie {cookie}; with a bearer header {bearer}"
    if r.answer("browser", "cross-site.cookie") == "accepted":
        return measured, "does not hold", "the cookie worked from another site here."
    if r.answer("browser", "cross-site.bearer") == "refused":
        return measured, "does not hold", "the bearer header was refused from another site too."
    return (
        measured,
        "holds only when",
        "the API is on another site: the SameSite=Lax cookie stayed home while a bearer "
        "header from an allowed CORS origin worked; on the API's own site cookies work.",
    )


JUDGES: dict[str, Callable[[Readings], Verdict]] = {
    "002-storage": _storage,
    "002-scalability": _scales,
    "002-client-stores": _client_stores,
    "002-format": _format,
    "002-flow": _flow,
    "002-verification": _verification,
    "002-performance": _performance,
    "002-security": _security,
    "002-logout": _logout,
    "002-expiration": _expiration,
    "002-revocation": _revoke_harder,
    "002-ideal-for": _ideal,
    "000-size": _size,
    "000-cpu": _cpu,
    "000-scales": _scales,
    "000-no-network": _no_network,
    "000-claims": _claims,
    "000-encrypted": _encrypted,
    "000-invalidate": _invalidate,
    "000-localstorage-js": _localstorage_js,
    "000-httponly": _httponly,
    "000-localstorage-workers": _workers,
    "000-localstorage-sync": _sync,
    "000-string-only": _string_only,
    "000-session-cookie": _session_cookie,
    "000-libraries": _libraries,
    "001-hybrid-pressure": _hybrid_pressure,
    "003-revoke": _revoke_harder,
    "003-logout": _invalidate,
    "003-stolen": _stolen,
    "003-hijack": _hijack,
    "003-bloat": _bloat,
    "003-shared-storage": _shared_storage,
    "003-invalidate-sessions": _session_invalidate,
    "004-multiple-devices": _multiple_devices,
}
