"""Cell 1, bytes on the wire: velvetrope's session cookie against the access tokens it
issues, per algorithm, as request header bytes, as ``Set-Cookie`` bytes and per 100k
requests.

Everything is produced by velvetrope's own code, in process: a real sign-in on an
in-memory service per algorithm, the session written by the session cookie transport,
the access token by the token service and, for browsers, by the access-token cookie
transport (``jwt-cookie`` mode). "With application claims" signs the same claims plus a
``roles`` list and a ``department`` with the same key, as an application adding them
would. Counted bytes are whole header lines: ``Name: value`` and CRLF.
"""

from __future__ import annotations

import asyncio
from typing import Any

from starlette.responses import Response

from velvetrope.bootstrap import build_service
from velvetrope.core.tokens import codec
from velvetrope.core.tokens.access import ACCESS_TYP
from velvetrope.core.tokens.codec import ALGORITHMS
from velvetrope.lab.context import LabContext
from velvetrope.lab.model import CellResult, Figure
from velvetrope.lab.servers import EMAIL, PASSWORD, unverified_claims
from velvetrope.settings import Settings
from velvetrope.web.browser import BrowserCookies

__all__ = ["APP_CLAIMS", "BLOG_2017", "measure"]

ORIGIN = "http://127.0.0.1:8000"
APP_CLAIMS: dict[str, Any] = {
    "roles": ["editor", "billing-viewer"],
    "department": "Research and Development",
}
BLOG_2017 = {"cookie_bytes": 6, "jwt_bytes": 304}  # the comparison behind "~51x"
PER = 100_000


def _line(name: str, value: str) -> int:
    return len(f"{name}: {value}\r\n".encode())


def _set_cookie_bytes(response: Response) -> int:
    return sum(
        len(b"Set-Cookie: " + value + b"\r\n")
        for name, value in response.raw_headers
        if name == b"set-cookie"
    )


def _bytes(key: str, label: str, value: int, **extra: float) -> Figure:
    return Figure(key, label, "bytes", value=float(value), extra=dict(extra))


async def _measure(result: CellResult) -> None:
    cookies = BrowserCookies.for_origin(secure=True)
    session_request: int | None = None
    for alg in ALGORITHMS:
        settings = Settings(
            _env_file=None,
            database_url="memory://",
            public_origin=ORIGIN,
            token_algorithm=alg,
            password_hash_profile="owasp-minimum",
        )
        service = build_service(settings)
        await service.start()
        try:
            user = await service.register(EMAIL, PASSWORD)
            if session_request is None:
                issued = await service.sessions.start(user.id)
                sent = Response()
                cookies.session.write(sent, issued.secret, max_age=settings.session_idle_timeout)
                session_request = _line("Cookie", f"{cookies.session.name}={issued.secret}")
                result.figures += [
                    _bytes("session.request", "session cookie, request header", session_request),
                    _bytes(
                        "session.set_cookie", "session cookie, Set-Cookie", _set_cookie_bytes(sent)
                    ),
                    Figure(
                        "session.per_100k",
                        "session cookie per 100k requests",
                        "MB",
                        value=session_request * PER / 1e6,
                    ),
                    Figure(
                        "session.id_chars",
                        "session ID length (base64url, 256 bits)",
                        "chars",
                        value=float(len(issued.secret)),
                    ),
                ]
            pair = await service.tokens.issue_for(user.id)
            token = pair.access_token
            sent = Response()
            cookies.access.write(sent, token, max_age=settings.access_token_ttl)
            bearer = _line("Authorization", f"Bearer {token}")
            signer = service.tokens.access.keys.signing_key
            fat = codec.sign_compact(
                {**unverified_claims(token), **APP_CLAIMS},
                key=signer.jwk,
                alg=signer.alg,
                kid=signer.kid,
                typ=ACCESS_TYP,
            )
            fat_bearer = _line("Authorization", f"Bearer {fat}")
            ratio = bearer / session_request
            result.figures += [
                _bytes(
                    f"jwt.{alg}.request",
                    f"{alg} access token, bearer header",
                    bearer,
                    ratio_to_session=ratio,
                    token_bytes=len(token),
                ),
                _bytes(
                    f"jwt.{alg}.cookie_request",
                    f"{alg} access token, cookie header",
                    _line("Cookie", f"{cookies.access.name}={token}"),
                ),
                _bytes(
                    f"jwt.{alg}.set_cookie",
                    f"{alg} access token, Set-Cookie (jwt-cookie)",
                    _set_cookie_bytes(sent),
                ),
                Figure(
                    f"jwt.{alg}.per_100k",
                    f"{alg} bearer header per 100k requests",
                    "MB",
                    value=bearer * PER / 1e6,
                ),
                _bytes(
                    f"jwt.{alg}.claims.request",
                    f"{alg} + roles and department, bearer header",
                    fat_bearer,
                    ratio_to_session=fat_bearer / session_request,
                    added=fat_bearer - bearer,
                ),
            ]
            if alg == "EdDSA":
                readable = unverified_claims(token)
                result.figures += [
                    Figure(
                        "jwt.parts",
                        "segments of the access token (header.payload.signature)",
                        "parts",
                        value=float(len(token.split("."))),
                    ),
                    Figure(
                        "jwt.claims_readable",
                        "claims anyone can read without a key",
                        "claims",
                        value=float(len(readable)),
                        outcome="readable: " + ", ".join(sorted(readable)),
                    ),
                    Figure(
                        "jwt.lifetime",
                        "access-token lifetime (exp - iat)",
                        "s",
                        value=float(readable["exp"] - readable["iat"]),
                    ),
                ]
        finally:
            await service.aclose()
    result.notes.append(
        f"The notes' ~51x comes from a 2017 post that compared a {BLOG_2017['cookie_bytes']}-byte "
        f"unsigned user-id cookie with a {BLOG_2017['jwt_bytes']}-byte JWT "
        f"({BLOG_2017['jwt_bytes'] / BLOG_2017['cookie_bytes']:.1f}x)."
    )


def measure(ctx: LabContext, result: CellResult) -> None:
    """Fill ``result`` (no servers, no rounds: byte counts do not vary)."""
    ctx.step("signing in and issuing tokens per algorithm")
    asyncio.run(_measure(result))
