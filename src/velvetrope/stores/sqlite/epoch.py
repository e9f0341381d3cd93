"""The revocation epoch: a number in shared memory that moves on every revocation.

Every process that opens a SQLite database (``serve`` workers, other ``serve``
processes on the same file, the CLI) maps the same 8-byte file beside it
(``velvetrope.db-epoch``). Appending to the revocation feed writes the new entry's
sequence number there *after* the entry is committed. A process that reads a number
other than the one it last synced at replays the feed before it answers, so a
revocation committed before a request started is never missed: no polling window.

Why the sequence number and not a counter: it needs no lock. Sequence numbers are
never reused (``AUTOINCREMENT``), so after any append the file holds a number no
reader has synced at before; two appends racing may leave the smaller one last,
which only costs a reader one more (empty) replay. A torn read gives a number that
differs from the last one seen, with the same harmless cost.

Reading it is one ``struct`` unpack from a mapped page: a fraction of a microsecond.

The same kind of file, ``velvetrope.db-writes``, is the database's write epoch: every
commit by every velvetrope process moves it (``Database.wrote``), and the session cache
asks SQLite's ``PRAGMA data_version`` only when it moved (see ``SQLiteSessionStore``).
"""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from velvetrope.errors import StoreUnavailable

__all__ = ["EPOCH_SUFFIX", "WRITES_SUFFIX", "RevocationEpoch"]

EPOCH_SUFFIX = "-epoch"
WRITES_SUFFIX = "-writes"
_WORD = struct.Struct("<q")


class RevocationEpoch:
    """The shared revocation epoch of one SQLite database file.

    Args:
        path: The epoch file (created owner-only, 8 bytes, if missing).

    Raises:
        StoreUnavailable: The file cannot be created or mapped.
    """

    __slots__ = ("_map", "path", "read")

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                if os.fstat(fd).st_size < _WORD.size:
                    os.ftruncate(fd, _WORD.size)  # zero-filled: epoch 0
                self._map = mmap.mmap(fd, _WORD.size)
            finally:
                os.close(fd)  # the mapping keeps the file
        except OSError as exc:
            raise StoreUnavailable(f"cannot map the revocation epoch {self.path!r}: {exc}") from exc
        unpack = _WORD.unpack_from
        mapped = self._map

        def read() -> int:
            """The current epoch (any process's last append)."""
            return unpack(mapped)[0]  # type: ignore[no-any-return]

        self.read = read

    def publish(self, sequence: int) -> None:
        """Announce that the feed entry ``sequence`` is committed."""
        _WORD.pack_into(self._map, 0, sequence)

    def close(self) -> None:
        """Unmap the file. A reader still holding this epoch then always sees it moved
        (``-1``, never a sequence number), so it replays the feed from the closed store
        and fails closed instead of trusting what it has."""
        self.read = _moved
        self._map.close()


def _moved() -> int:
    return -1
