"""``/docs`` needs nothing but this server: the page names no other origin and its
assets come from the installed swagger-ui-py package (checklist OPS-D1)."""

from __future__ import annotations

import httpx

from velvetrope.web.docs import ASSETS


async def test_OPS_D1_the_docs_page_loads_only_same_origin_assets(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/docs")
    assert page.status_code == 200
    assert "https://" not in page.text
    assert "http://" not in page.text
    assert "cdn" not in page.headers["content-security-policy"]
    for name, media in ASSETS.items():
        assert f"/docs/assets/{name}" in page.text
        asset = await client.get(f"/docs/assets/{name}")
        assert asset.status_code == 200, name
        assert asset.headers["content-type"] == media
        assert len(asset.content) > 100


async def test_an_unknown_docs_asset_is_the_house_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/docs/assets/swagger-editor-bundle.js")
    assert response.status_code == 404
    assert response.json()["error"] == "not_found"
