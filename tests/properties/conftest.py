"""Property tests (hypothesis): every parser of untrusted input answers a value or its
documented error, never another exception (RES-02).

Each test draws both raw noise (any bytes, any text) and near-misses built from a
valid value (a genuine token with one segment changed, a JSON object of the right
shape with odd members), so the search reaches past the first check. The example
counts are set in :data:`PROPERTIES`, sized for the suite; raise them locally with
``--hypothesis-seed`` and ``HYPOTHESIS_MAX_EXAMPLES``.
"""
