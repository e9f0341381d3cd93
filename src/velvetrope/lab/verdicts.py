"""One judging rule per claim: the figures it reads, what it says was measured, and the
verdict those numbers give.

A rule raises :class:`Missing` (with the figure's reason) when a figure it needs was not
measured; the claim is then "not measured" with that reason, never guessed. The
thresholds are stated in the rules: "faster" means a lower p50 by more than the rounds'
spread would explain (10 %), "~51x" holds between 40x and 65x.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["JUDGES", "Missing", "Readings"]

Verdict = tuple[str, str, str]  # (measured here, verdict word, verdict in a sentence)
SAME = 0.10  # relative difference within which two costs count as equal


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
    if jwt and session < jwt * (1 - SAME):
        why = (
            "'less scalable' means less throughput per node: "
            + both
            + f"with one, sessions reached {session / jwt:.0%} of JWT's throughput across 3 "
            "nodes on SQLite"
            + (f", {redis / redis_jwt:.0%} on Redis (near-cache)" if redis and redis_jwt else "")
            + "."
            + note
        )
        return measured, "holds only when", why
    if not jwt:
        raise Missing("JWTs behind nginx on 3 nodes are measured in a full run")
    why = (
        "the session store is per process: "
        + both
        + f"with a shared store sessions kept up with JWTs ({session / jwt:.0%} of JWT's "
        f"throughput on 3 nodes; {session / one:.2f}x their own on 1 node)." + note
    )
    return measured, "holds only when", why


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
    return (
        f"per signed-in device: a session takes {session:,.0f} B in SQLite; a JWT client's "
        f"refresh family {family:,.0f} B",
        "holds only when",
        "tokens can neither be refreshed nor revoked: velvetrope's JWT clients leave a refresh "
        "family on the server, about the size of a session.",
    )


def _client_stores(r: Readings) -> Verdict:
    read = r.outcome("browser", "xss.localstorage")
    cookie = r.outcome("browser", "xss.httponly")
    return (
        f"token in localStorage: {read}; HttpOnly session cookie: {cookie}",
        "holds",
        "both places are used; they differ in who can read them (see the localStorage rows).",
    )


def _format(r: Readings) -> Verdict:
    parts = r.value("wire", "jwt.parts")
    chars = r.value("wire", "session.id_chars")
    return (
        f"access token: {parts:.0f} base64url segments (header.payload.signature); session "
        f"ID: {chars:.0f} random base64url characters (256 bits)",
        "holds",
        "as described.",
    )


def _flow(r: Readings) -> Verdict:
    bearer = r.value("wire", "jwt.EdDSA.request")
    cookie = r.value("wire", "jwt.EdDSA.cookie_request")
    return (
        f"velvetrope takes the JWT in an Authorization header ({bearer:.0f} B) or in an "
        f"HttpOnly cookie (jwt-cookie mode, {cookie:.0f} B)",
        "holds only when",
        "read as a convention: the transport is independent of the credential.",
    )


def _security(r: Readings) -> Verdict:
    cookie = r.outcome("browser", "cross-site.cookie")
    riding = r.outcome("browser", "xss.session-riding")
    return (
        f"cross-site fetch with the SameSite=Lax cookie: {cookie}; a script on the page: {riding}",
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


def _logout(r: Readings) -> Verdict:
    measured = _revocation_text(r)
    return (
        measured,
        "holds only when",
        (
            "the JWT has no denylist: velvetrope's revocation feed refused a signed-out JWT on "
            "another node within the time shown; sessions need no feed."
        ),
    )


def _invalidate(r: Readings) -> Verdict:
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
    return (
        _revocation_text(r) + f"; the denylist check costs {us(check)} per request",
        "holds only when",
        "counting work, not effect: a JWT needs the denylist and its feed; with them, "
        "revocation took effect about as fast as deleting a session.",
    )


def _session_invalidate(r: Readings) -> Verdict:
    key, session = r.first("revocation", "session.redis", "session.sqlite")
    return (
        f"a deleted session was refused on another node {ms(session)} after sign-out "
        f"({key.split('.')[1]})",
        "holds",
        "deleting the session ends it everywhere.",
    )


def _expiration(r: Readings) -> Verdict:
    lifetime = r.value("wire", "jwt.lifetime")
    return (
        f"access tokens carry exp (lifetime {lifetime:.0f} s); sessions end at deadlines the "
        "server keeps (30 min idle, 12 h absolute by default)",
        "holds",
        "as described; velvetrope sets both from its settings.",
    )


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
    return (
        f"a cold JWT check needed no store round trip ({us(cold)}); an uncached Redis session "
        f"lookup {us(redis)}",
        "holds only when",
        "revocation is not needed at once: without a network check a revoked token is "
        "accepted until a denylist reaches the verifier (velvetrope takes a push, or on "
        "SQLite reads a shared revocation epoch on every request).",
    )


def _claims(r: Readings) -> Verdict:
    tampered = r.outcome("theft", "bearer.tampered")
    readable = r.outcome("wire", "jwt.claims_readable")
    return (
        f"a token with an edited sub: {tampered}; its claims are {readable}",
        "holds",
        "claims cannot be changed without the key, though anyone holding the token can read them.",
    )


def _encrypted(r: Readings) -> Verdict:
    readable = r.outcome("wire", "jwt.claims_readable")
    return (
        f"the access token's payload decodes without any key: {readable}",
        "does not hold",
        "velvetrope's JWTs (like most) are signed, not encrypted: keep secrets out of claims.",
    )


def _localstorage_js(r: Readings) -> Verdict:
    return (
        f"an injected script: {r.outcome('browser', 'xss.localstorage')}",
        "holds",
        "any script on the page read the token.",
    )


def _httponly(r: Readings) -> Verdict:
    cookie = r.outcome("browser", "xss.httponly")
    riding = r.outcome("browser", "xss.session-riding")
    return (
        f"the HttpOnly cookie: {cookie}; a credentialed request from the same script: {riding}",
        "holds only when",
        "'never accessible' means 'never readable': the script cannot steal the cookie but "
        "can still use it while it runs (session riding).",
    )


def _workers(r: Readings) -> Verdict:
    return (
        f"in a web worker: {r.outcome('browser', 'worker.localstorage')}",
        "holds",
        "workers have no localStorage.",
    )


def _sync(r: Readings) -> Verdict:
    read = r.value("browser", "localstorage.read")
    return (
        f"one synchronous getItem of the token: {us(read)} in Chromium",
        "holds only when",
        "read as 'synchronous': it is, but a token read costs well under a millisecond; "
        "it does not slow an app down measurably.",
    )


def _libraries(_r: Readings) -> Verdict:
    return (
        "not measured: an opinion on effort",
        "not a measurable claim",
        "libraries exist for both; velvetrope implements both behind one API.",
    )


def _stolen(r: Readings) -> Verdict:
    bearer = r.outcome("theft", "bearer.unbound")
    try:
        bound = r.outcome("theft", "bearer.dpop")
    except Missing as exc:
        bound = f"not measured ({exc})"
    _skey, _session, _jkey, jwt, _plain, _life = _revocation_figures(r)
    return (
        f"a stolen token replayed by another client: {bearer}; bound with DPoP: {bound}",
        "holds only when",
        f"the token is not bound and not revoked: a sign-out refused it within {ms(jwt)}; "
        "DPoP binding would refuse the replay itself.",
    )


def _hijack(r: Readings) -> Verdict:
    cookie = r.outcome("theft", "cookie.unbound")
    try:
        bound = r.outcome("theft", "cookie.dbsc")
    except Missing as exc:
        bound = f"not measured ({exc})"
    return (
        f"a stolen session cookie replayed by another client: {cookie}; bound with DBSC: {bound}",
        "holds",
        "an unbound session cookie is as good as a stolen token: whoever holds it is in.",
    )


def _bloat(r: Readings) -> Verdict:
    added = r.number("wire", "jwt.EdDSA.claims.request", "added")
    plain = r.value("wire", "jwt.EdDSA.request")
    return (
        f"adding roles and department to the token: +{added:.0f} B on every request "
        f"({plain:.0f} B → {plain + added:.0f} B)",
        "holds",
        "every claim travels with every request; a session keeps them on the server.",
    )


def _multiple_devices(r: Readings) -> Verdict:
    cookie = r.outcome("browser", "cross-site.cookie")
    bearer = r.outcome("browser", "cross-site.bearer")
    return (
        f"from another site: with the cookie {cookie}; with a bearer header {bearer}",
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
    "000-libraries": _libraries,
    "003-revoke": _revoke_harder,
    "003-logout": _invalidate,
    "003-stolen": _stolen,
    "003-hijack": _hijack,
    "003-bloat": _bloat,
    "003-shared-storage": _shared_storage,
    "003-invalidate-sessions": _session_invalidate,
    "004-multiple-devices": _multiple_devices,
}
