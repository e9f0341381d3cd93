"""``/docs``: Swagger UI served from the installed ``swagger-ui-py`` package, never a CDN.

The page and its three assets (the bundle, its stylesheet, the favicon) all come from
this server, so the docs work offline and behind a firewall, and the page's
Content-Security-Policy names no other origin: scripts from ``'self'`` plus the hash of
the one inline script that starts Swagger UI.
"""

from __future__ import annotations

import base64
import hashlib
import re
from importlib.resources import files
from typing import Final

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, Response

__all__ = ["ASSETS", "add_docs"]

ASSET_PREFIX: Final = "/docs/assets/"
ASSETS: Final = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}


def _asset(name: str) -> bytes:
    return files("swagger_ui").joinpath("static", name).read_bytes()


def add_docs(app: FastAPI, *, openapi_url: str = "/openapi.json") -> None:
    """Serve Swagger UI at ``/docs`` and its assets under ``/docs/assets/``.

    Raises:
        FileNotFoundError: The installed ``swagger-ui-py`` lacks an asset (a broken install).
    """
    assets = {name: (_asset(name), media) for name, media in ASSETS.items()}  # read once
    page = get_swagger_ui_html(
        openapi_url=openapi_url,
        title="velvetrope API",
        swagger_js_url=ASSET_PREFIX + "swagger-ui-bundle.js",
        swagger_css_url=ASSET_PREFIX + "swagger-ui.css",
        swagger_favicon_url=ASSET_PREFIX + "favicon-32x32.png",
    )
    html = bytes(page.body).decode()
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s.encode()).digest()).decode() + "'"
        for s in re.findall(r"<script>(.*?)</script>", html, flags=re.DOTALL)
    )
    # Swagger UI shows data: images (its icons); nothing else comes from elsewhere.
    csp = (
        f"default-src 'none'; script-src 'self' {hashes}; style-src 'self'; "
        "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'"
    )

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})

    @app.get(ASSET_PREFIX + "{name}", include_in_schema=False)
    async def docs_asset(name: str) -> Response:
        found = assets.get(name)
        if found is None:
            raise HTTPException(404)  # the house 404 (not_found)
        body, media = found
        return Response(body, media_type=media)
