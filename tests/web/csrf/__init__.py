"""CSRF defence over HTTP, one module per group of checklist lines (CSRF-01..CSRF-12), then attacks.

Every request here is built by hand on ``bare_client``: the headers a browser would send
(``Origin``, ``Sec-Fetch-Site``, ``Referer``), the cookies it holds, and the token when
the test says so. Both browser credentials are covered where they apply: the session
cookie and JWT-in-cookie (access + refresh cookies). The browser, the unsafe endpoints
and the refusal check are in :mod:`tests.web.csrf.helpers`; the fixtures in ``conftest.py``.
The unsafe routes the refusal tests call are walked from the app itself
(``helpers.SERVER_ROUTES``), so a route added to the app is refused-tested at once; the
few that need no token are listed in ``helpers.TOKEN_FREE``, each with its reason.
"""
