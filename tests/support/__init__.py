"""Shared test infrastructure: one copy of everything more than one test module needs.

* :mod:`tests.support.require`: skip a test whose tool or server is missing, or fail
  it when ``CI`` is set (a backend, a browser or a vector file never passes silently).
* :mod:`tests.support.ports`: free loopback ports.
* :mod:`tests.support.redis`: the shared Redis server, fresh key prefixes, and a
  ``redis-server`` of a test's own.
* :mod:`tests.support.postgres`: the shared PostgreSQL server, throwaway schemas and
  databases, and a private cluster to stop and start.
* :mod:`tests.support.stores`: every store backend by name.
* :mod:`tests.support.services`: the test policies, services and in-process clients.
* :mod:`tests.support.server`: ``velvetrope serve`` as a real process.
"""
