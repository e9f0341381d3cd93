"""JWT access tokens, refresh-token families, keys and revocation.

``service.TokenService`` ties them together; :mod:`codec` is the only module that
imports the JOSE library.
"""
