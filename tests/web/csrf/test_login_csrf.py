"""CSRF-12 and login CSRF: the pre-session cookie, and form sign-in and sign-up that
need it with its token."""

from __future__ import annotations

import httpx
import pytest

from tests.support.cookies import parse_set_cookie
from tests.support.services import PASSWORD
from tests.web.csrf.helpers import (
    ACCESS,
    FORGED,
    MODES,
    PRESESSION,
    SAME_ORIGIN,
    SESSION,
    assert_csrf_refusal,
    other_client,
)

# --- CSRF-12: the pre-session cookie ----------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_12_the_pre_session_cookie_attributes(bare_client: httpx.AsyncClient) -> None:
    response = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    assert response.status_code == 200
    headers = response.headers.get_list("set-cookie")
    assert len(headers) == 1
    cookie = parse_set_cookie(headers[0])
    assert cookie.name == PRESESSION
    assert cookie.has("secure")
    assert cookie.has("httponly")  # the token travels in the body; no script reads the cookie
    assert cookie.attributes["samesite"] == "strict"
    assert cookie.attributes["path"] == "/"
    assert not cookie.has("domain")
    assert 0 < cookie.max_age <= 12 * 3600
    assert len(cookie.value) == 43
    token = response.json()["csrf_token"]
    assert cookie.value not in token  # the token is a MAC over the nonce, not the nonce
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("mode", MODES)
async def test_CSRF_12_the_pre_session_cookie_is_kept_and_a_bad_one_replaced(
    bare_client: httpx.AsyncClient,
) -> None:
    first = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    again = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    assert "set-cookie" not in again.headers
    assert again.json()["csrf_token"] != first.json()["csrf_token"]
    async with other_client(bare_client) as other:
        for bad in ("short", "x" * 44, ""):
            replaced = await other.get("/auth/csrf", headers={"Cookie": f"{PRESESSION}={bad}"})
            assert parse_set_cookie(replaced.headers["set-cookie"]).value != bad


# --- login CSRF: form sign-in and sign-up need the pre-session pair ---------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("path", ["/auth/login", "/auth/register"])
@pytest.mark.parametrize(
    "missing", ["cookie and token", "token", "cookie", "token of another cookie", "forged token"]
)
async def test_login_csrf_form_posts_need_the_pre_session_cookie_and_its_token(
    bare_client: httpx.AsyncClient, user_email: str, path: str, missing: str
) -> None:
    email = user_email if path == "/auth/login" else "new@example.com"
    form = {"email": email, "password": PASSWORD}
    mine = await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)
    nonce = mine.cookies[PRESESSION]
    async with other_client(bare_client) as attacker:
        theirs = (await attacker.get("/auth/csrf")).json()["csrf_token"]
    cookie = f"{PRESESSION}={nonce}"
    if missing == "cookie and token":
        headers, field = {}, None
    elif missing == "token":
        headers, field = {"Cookie": cookie}, None
    elif missing == "cookie":
        headers, field = {"Cookie": ""}, mine.json()["csrf_token"]
    elif missing == "token of another cookie":
        headers, field = {"Cookie": cookie}, theirs
    else:
        headers, field = {"Cookie": cookie}, FORGED
    if field is not None:
        form["csrf_token"] = field
    async with other_client(bare_client) as victim:
        response = await victim.post(path, data=form, headers={**SAME_ORIGIN, **headers})
        assert_csrf_refusal(response, mentions=PRESESSION)
        assert not victim.cookies.jar


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", ["field", "header"])
async def test_login_csrf_with_get_csrf_first_a_form_sign_in_works(
    bare_client: httpx.AsyncClient, user_email: str, where: str
) -> None:
    token = (await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
    form = {"email": user_email, "password": PASSWORD}
    headers = dict(SAME_ORIGIN)
    if where == "field":
        form["csrf_token"] = token
    else:
        headers["X-CSRF-Token"] = token
    response = await bare_client.post("/auth/login", data=form, headers=headers)
    assert response.status_code == 200, response.text
    assert {SESSION, ACCESS} & set(response.cookies)
    assert (await bare_client.get("/auth/me")).status_code == 200
    signup = {"email": "new@example.com", "password": PASSWORD, "csrf_token": token}
    async with other_client(bare_client) as other:
        token = (await other.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
        signup["csrf_token"] = token
        created = await other.post("/auth/register", data=signup, headers=SAME_ORIGIN)
        assert created.status_code == 201, created.text


@pytest.mark.parametrize("mode", MODES)
async def test_login_csrf_a_valid_pair_from_another_site_is_still_refused(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    token = (await bare_client.get("/auth/csrf", headers=SAME_ORIGIN)).json()["csrf_token"]
    form = {"email": user_email, "password": PASSWORD, "csrf_token": token}
    response = await bare_client.post(
        "/auth/login", data=form, headers={"Sec-Fetch-Site": "cross-site"}
    )
    assert_csrf_refusal(response)
    assert PRESESSION in {c.name for c in bare_client.cookies.jar}
    assert {SESSION, ACCESS}.isdisjoint(c.name for c in bare_client.cookies.jar)


@pytest.mark.parametrize("mode", MODES)
async def test_login_csrf_json_sign_in_needs_no_token(
    bare_client: httpx.AsyncClient, user_email: str
) -> None:
    """A cross-site page cannot send JSON without a preflight; the origin check still runs."""
    response = await bare_client.post(
        "/auth/login", json={"email": user_email, "password": PASSWORD}, headers=SAME_ORIGIN
    )
    assert response.status_code == 200
