"""The line's events: ``events tail URL`` prints them as they come, ``events replay`` publishes the
outbox's again.

``tail`` runs until Ctrl-C (exit 0); a broker not there when it starts is one line and exit 4, one that
goes away later is said and waited for. ``replay --since WHEN [--until WHEN] --events URL --store URL``
publishes every event the store's outbox holds from then on, as it was first built (same bytes, same
``UniqueID``: a consumer that had it drops the copy), and says how many; exit 4 when the broker is
not there.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator

import orjson

from engine.cli.shared import ExitCode, UsageError, open_existing, parse_since
from engine.linebus.mqtt import Broker
from engine.linebus.publisher import republish
from engine.linebus.sink import BrokerAway, SinkError, sink_for
from engine.messages import Message

CONNECT_S = 10.0
"""How long replay waits for its broker."""


def tail(args: argparse.Namespace) -> int:
    from engine.linebus.tail import tail as follow

    try:
        broker = Broker.parse(args.url)
    except SinkError as exc:
        raise UsageError(str(exc).removeprefix("--events ")) from None
    try:
        follow(broker, lambda line: print(line, flush=True), lambda news: print(news, file=sys.stderr, flush=True))
    except BrokerAway as exc:
        print(f"floorflow: error: {exc}", file=sys.stderr)
        return ExitCode.STATION_ERROR
    except KeyboardInterrupt:
        pass
    return ExitCode.OK


def replay(args: argparse.Namespace) -> int:
    since = parse_since(args.since)
    until = parse_since(args.until, "--until") if args.until is not None else None
    try:
        sink = sink_for(args.events)
    except SinkError as exc:
        raise UsageError(str(exc)) from None
    store = open_existing(args.store)
    try:
        count = republish(sink, _between(store.outbox_since(since), until), CONNECT_S)
    except BrokerAway as exc:
        print(f"floorflow: error: {exc}", file=sys.stderr)
        return ExitCode.STATION_ERROR
    finally:
        store.close()
    print(f"{count} event{'s' if count != 1 else ''} published again to {sink.shown}")
    return ExitCode.OK


def _between(messages: Iterator[Message], until: float | None) -> Iterator[Message]:
    """The messages stamped before ``until`` (all of them when None)."""
    if until is None:
        yield from messages
        return
    for message in messages:
        if _stamp(message) <= until:
            yield message


def _stamp(message: Message) -> float:
    from datetime import datetime

    return datetime.fromisoformat(str(orjson.loads(message.payload)["TimeStamp"])).timestamp()
