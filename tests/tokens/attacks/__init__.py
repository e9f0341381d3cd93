"""The JWT attack catalogue (checklist Part 2) against velvetrope's bearer verification,
one module per group of attack rows.

Every forged token is built by hand (see ``tests.tokens.conftest.Forger``) and, unless the
attack is the signature itself, signed with the server's *real* key, so that the one thing
under test is the only thing wrong with it. Each is presented twice:

* to the core verifier, ``service.tokens.access.verify``, which must raise
  ``InvalidToken`` (usually with the reason that proves *which* check caught it); and
* over HTTP, ``GET /auth/me`` with ``Authorization: Bearer``: 401, body exactly
  ``{"error": "invalid_token", "detail": ...}``, ``WWW-Authenticate: Bearer
  realm="velvetrope", error="invalid_token"``, no echo of the token, and fast (JWT-19).

A row of the catalogue is usually one test that runs every case of the row and reports
every case that fails (``reject_each``), which keeps the suite fast. Positive controls
(``accept_each``, ``*_is_accepted``) show the forging helpers make tokens the server
accepts, so a rejection is caused by the mutation and not by a broken helper.

Test names carry the checklist IDs (JWT-xx, KEY-xx, TERM-xx, RT-xx) and the attack row
(NONE, CONF, PSY, DER, MALL, KID, JKU, JWK, ALLOW, CRIT, DUP, TIME, AUD, TYP, FMT, JWE,
SIZE, NULLSIG, REPLAY).
"""
