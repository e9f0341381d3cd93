"""Internal-token authentication for WSGI services (Flask, Django): one middleware.

::

    from velvetrope.integrations import InternalTokenVerifier, WSGIInternalAuth

    app.wsgi_app = WSGIInternalAuth(app.wsgi_app, verifier)   # Flask
    application = WSGIInternalAuth(get_wsgi_application(), verifier)  # Django

The verified claims are in ``environ["velvetrope.internal"]``. The JWKS is fetched
synchronously (a lock keeps it to one fetch at a time across threads).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from velvetrope.errors import AuthError
from velvetrope.integrations._http import bearer_token, refusal
from velvetrope.integrations.verifier import InternalTokenVerifier

__all__ = ["ENVIRON_KEY", "WSGIInternalAuth"]

ENVIRON_KEY = "velvetrope.internal"

StartResponse = Callable[..., Any]
WSGIApp = Callable[[dict[str, Any], StartResponse], Iterable[bytes]]


def _headers(environ: dict[str, Any]) -> list[tuple[bytes, bytes]]:
    found = []
    for key, value in environ.items():
        if key == "HTTP_AUTHORIZATION":
            found.append((b"authorization", str(value).encode("latin-1")))
        elif key == "HTTP_COOKIE":
            found.append((b"cookie", str(value).encode("latin-1")))
    return found


class WSGIInternalAuth:
    """Refuse every request without a valid internal token.

    Args:
        app: The WSGI application.
        verifier: Checks the tokens (``verify_sync``).
        exempt: Paths served without a token, matched exactly.
    """

    def __init__(
        self, app: WSGIApp, verifier: InternalTokenVerifier, *, exempt: frozenset[str] = frozenset()
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.exempt = exempt

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exempt:
            return self.app(environ, start_response)
        try:
            claims = self.verifier.verify_sync(bearer_token(_headers(environ)))
        except AuthError as exc:
            status, body, headers = refusal(exc)
            reason = {401: "Unauthorized", 403: "Forbidden", 503: "Service Unavailable"}[status]
            start_response(
                f"{status} {reason}", [(k.decode(), v.decode("latin-1")) for k, v in headers]
            )
            return [body]
        environ[ENVIRON_KEY] = claims
        return self.app(environ, start_response)
