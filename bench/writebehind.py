"""The store's write-behind window under CPU load: the worst time from an attempt handed to ``add`` to its commit.

Every core is kept busy by a spinning process while ``WRITERS`` threads (a station's slots) add
attempts as fast as they can; the store's thread measures, at each commit, how long the oldest row
of the batch waited (``SqlStore.write_behind_max_s``). The bound in ``engine.store.worker``
(``BEHIND_ROWS`` rows, ``BEHIND_S`` seconds: a writer past either waits for the commit) keeps it
short even when the store's thread is not scheduled for a while.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from engine.record import Attempt
from engine.store import open_store

WRITERS = 4
"""Threads adding attempts at once, as the slots of a station do."""


def write_behind_max_ms(url: str, attempts: Sequence[Attempt]) -> float:
    """Add ``attempts`` from WRITERS threads into the store at ``url``; the longest any waited for its commit."""
    with open_store(url) as store:
        shares = [attempts[k::WRITERS] for k in range(WRITERS)]
        failed: list[BaseException] = []

        def write(share: Sequence[Attempt]) -> None:
            try:
                for attempt in share:
                    store.add(attempt)
            except BaseException as exc:
                failed.append(exc)

        threads = [threading.Thread(target=write, args=(share,)) for share in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if failed:
            raise SystemExit(f"error: adding attempts to {store.shown} failed: {failed[0]}")
        store.flush()
        return store.write_behind_max_s * 1000.0
