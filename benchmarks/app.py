"""The app under benchmark: ``velvetrope.lab.benchapp`` (shared with ``velvetrope lab``).

Run it with uvicorn's ``--factory`` flag; settings come from ``VELVETROPE_*``::

    uvicorn velvetrope.lab.benchapp:build_app --factory
"""

from velvetrope.lab.benchapp import (
    BODY,
    FLOOR_PATH,
    GUARDED_PATH,
    OPEN_PATH,
    PROTECTED_PATH,
    build_app,
)

__all__ = ["BODY", "FLOOR_PATH", "GUARDED_PATH", "OPEN_PATH", "PROTECTED_PATH", "build_app"]
