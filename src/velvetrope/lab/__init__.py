"""``velvetrope lab``: measure the notes' claims about sessions and JWTs on this machine.

A run measures the cells of the matrix (:mod:`velvetrope.lab.matrix`), one module each
in :mod:`velvetrope.lab.cells`, with its own servers on loopback
(:mod:`velvetrope.lab.services`, :mod:`velvetrope.lab.servers`), a noise check
(:mod:`velvetrope.lab.machine`), and writes ``results.json`` (:mod:`velvetrope.lab.model`,
schema in ``data/results.schema.json``), ``report.html`` and ``report.md``
(:mod:`velvetrope.lab.report`). The claims and their verdicts are in
:mod:`velvetrope.lab.claims` and :mod:`velvetrope.lab.verdicts`; features that have not
landed are detected in :mod:`velvetrope.lab.features`.

The plots need the ``lab`` extra (matplotlib), imported only when a run starts.
"""
