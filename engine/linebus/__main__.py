"""``python -m engine.linebus``: a station's publisher, in a process of its own (``engine.linebus.process``).

Publishes the outbox of ``--store`` as ``--line``/``--station`` through ``--events``, woken by each line
on its standard input; at the end of that input it publishes what it can within ``--grace`` seconds and
ends (exit 0; 1 with one line on stderr when the store or the sink failed it). It runs at the lowest
CPU priority (``NICENESS``), so it never takes a core from the station's units.
"""

from __future__ import annotations

import argparse
import gc
import os
import signal
import sys
from contextlib import ExitStack, suppress

from engine.linebus.publisher import Publisher
from engine.linebus.sink import SinkError, sink_for
from engine.messages import Source
from engine.store import StoreError, open_store

NICENESS = 19
"""The publisher's CPU priority, the lowest: a station's units come first, and the publisher takes the time they
leave (a station waits on its hardware most of the time, so its events still leave within milliseconds)."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m engine.linebus", description=__doc__)
    parser.add_argument("--store", required=True)
    parser.add_argument("--events", required=True)
    parser.add_argument("--line", required=True)
    parser.add_argument("--station")
    parser.add_argument("--grace", type=float, default=2.0)
    args = parser.parse_args(argv)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the station's: its end of input stops this one
    source = Source(args.line, args.station)
    with suppress(OSError):  # a platform without priorities: the same, only not yielding
        os.nice(NICENESS)
    with ExitStack() as stores:
        try:
            sink = sink_for(args.events)
            store = stores.enter_context(open_store(args.store))
            marks = stores.enter_context(open_store(args.store))  # its own connection: a mark never delays a read
        except (SinkError, StoreError) as exc:
            print(f"error: line events are not published: {exc}", file=sys.stderr)
            return 1
        store.tell_line(source)  # reads and marks only this station's rows
        marks.tell_line(source)
        publisher = Publisher(store, sink, source, marks=marks)
        gc.freeze()  # what is built so far lives as long as the station: no full collection looks through it again
        publisher.serve(sys.stdin.fileno(), args.grace)  # until the station's input ends (it stopped, or died)
    if publisher.error is not None:
        print(f"error: line events stopped being published: {publisher.error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
