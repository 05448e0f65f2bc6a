"""A line's events as they come: every message under an MQTT prefix, one readable line each.

``tail`` subscribes to ``prefix/#`` (QoS 1; the stations' retained statuses come first) and hands each
message's line to ``out`` until interrupted. A broker not there at the start is ``BrokerAway``; one
that goes away later is said once and waited for, the subscription taken again when it is back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import orjson

from engine.linebus.mqtt import Broker
from engine.linebus.sink import BrokerAway

NOTHING = "-"


def shown(topic: str, payload: bytes) -> str:
    """One event as a line: its time, topic, message name, unit (or lot), result (or state, decision)."""
    try:
        event = orjson.loads(payload)
        body = event["MessageBody"]
        name = str(event["MessageName"]).removeprefix("floorflow.")
        when = str(event["TimeStamp"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return f"{NOTHING}  {topic}  (not a line event: {len(payload)} bytes)"
    unit = body.get("UnitIdentifier") or body.get("Lot") or NOTHING
    result = next((body[k] for k in ("Result", "State", "Decision", "Question") if body.get(k)), NOTHING)
    stage = f" {body['TestName']}" if body.get("TestName") else ""
    return f"{when}  {topic}  {name}{stage}  {unit}  {result}"


def tail(broker: Broker, out: Callable[[str], None], said: Callable[[str], None]) -> None:
    """Hand ``out`` each event's line until KeyboardInterrupt; ``said`` hears of the broker going and coming."""
    client = broker.client("floorflow-tail")
    lost = threading.Event()

    def connected(client: Any, _data: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{broker.prefix}/#", qos=1)
            if lost.is_set():
                lost.clear()
                said(f"{broker.shown}: the broker is back")

    def gone(_client: Any, _data: Any, _flags: Any, _reason: Any, _properties: Any) -> None:
        if not lost.is_set():
            lost.set()
            said(f"{broker.shown}: the broker went away; waiting for it (Ctrl-C ends)")

    client.on_connect = connected
    client.on_disconnect = gone
    client.on_message = lambda _client, _data, message: out(shown(message.topic, bytes(message.payload)))
    try:
        client.connect(broker.host, broker.port, keepalive=10)
    except OSError as exc:
        raise BrokerAway(f"{broker.shown}: the broker is not there ({exc.strerror or exc})") from None
    client.loop_start()
    try:
        threading.Event().wait()
    finally:
        client.disconnect()
        client.loop_stop()
