"""The MQTT sink: ``mqtt://[user[:password]@]host[:port]/prefix`` (port 1883 by default), with paho-mqtt.

Every line event is published with QoS 1 under ``prefix/`` and counted as delivered when the broker
acknowledges it (PUBACK). On every connection the station's status is published retained, online;
the broker publishes the retained offline status (the last will) when the station drops without
saying goodbye, and a station that stops cleanly publishes it itself. The sink reconnects on its own,
backing off from 1 to 5 seconds. It keeps no queue of its own: what is not yet acknowledged is paho's,
bounded by the publisher's window (``INFLIGHT``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode

from engine.diagnostics import quoted
from engine.linebus.sink import SinkError
from engine.messages import Message, Source, StationState, station_status

DEFAULT_PORT = 1883
INFLIGHT = 0
"""paho's own bound on messages in flight: none (paho's default, 20, is too few for an outbox draining after an
outage, and any bound makes paho look through every message waiting at each acknowledgement); the publisher's
window bounds them instead."""
KEEPALIVE_S = 10
"""Seconds between pings: a broker finds a station gone (and publishes its will) within 1.5 times this."""
GOODBYE_S = 2.0
"""How long a clean stop waits for the broker to acknowledge the offline status."""


@dataclass(frozen=True)
class Broker:
    """Where an ``mqtt://`` URL points."""

    host: str
    port: int
    prefix: str
    username: str | None = None
    password: str | None = None

    @classmethod
    def parse(cls, url: str) -> Broker:
        """``mqtt://[user[:password]@]host[:port]/prefix``; SinkError, naming the URL, when it is not one."""
        shown = quoted(_without_password(url), 80)
        parts = urlsplit(url)
        if parts.scheme != "mqtt":
            raise SinkError(f"--events {shown}: not an mqtt:// URL")
        try:
            port = parts.port or DEFAULT_PORT
        except ValueError:
            raise SinkError(f"--events {shown}: the port is not a number from 1 to 65535") from None
        if not parts.hostname:
            raise SinkError(f"--events {shown}: give the broker's host: mqtt://HOST[:PORT]/PREFIX")
        prefix = parts.path.strip("/")
        if not prefix or "+" in prefix or any(c in url for c in "#?\0"):
            raise SinkError(f"--events {shown}: give a topic prefix without wildcards: mqtt://HOST[:PORT]/PREFIX")
        user = unquote(parts.username) if parts.username else None
        password = unquote(parts.password) if parts.password else None
        return cls(parts.hostname, port, prefix, user, password)

    @property
    def shown(self) -> str:
        user = f"{self.username}@" if self.username else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"mqtt://{user}{host}:{self.port}/{self.prefix}"

    def client(self, name: str) -> mqtt.Client:
        """A paho client for this broker, not yet connected, reconnecting with backoff once it is."""
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"{name}-{os.urandom(4).hex()}")
        if self.username is not None:
            client.username_pw_set(self.username, self.password)
        client.reconnect_delay_set(min_delay=1, max_delay=5)
        return client


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return url.replace(f":{parts.password}@", ":***@", 1)


class MqttSink:
    """The ``mqtt`` entry of ``floorflow.sinks``: a station's line events to an MQTT broker."""

    def __init__(self, url: str) -> None:
        self.broker = Broker.parse(url)
        self._client: mqtt.Client | None = None
        self._source: Source | None = None
        self._on_acked: Callable[[str], None] = lambda unique_id: None
        self._connected = False
        self._lock = threading.Lock()
        self._waiting: dict[int, str | None] = {}
        """The UniqueID of each message paho has (by its mid) until the broker acknowledges it."""
        self._early: set[int] = set()
        """Mids acknowledged before ``publish`` had noted them (paho's thread can be that quick)."""

    @property
    def connected(self) -> bool:
        return self._connected

    @property
    def shown(self) -> str:
        return self.broker.shown

    def start(self, source: Source | None, on_acked: Callable[[str], None]) -> None:
        self._source, self._on_acked = source, on_acked
        client = self.broker.client("floorflow" if source is None else f"floorflow-{source.name.replace('/', '-')}")
        client.max_inflight_messages_set(INFLIGHT)
        if source is not None:
            will = station_status(source, StationState.OFFLINE, time.time())
            client.will_set(self._topic(will), will.payload, qos=1, retain=True)
        client.on_connect = self._connect
        client.on_disconnect = self._disconnect
        client.on_publish = self._published
        client.connect_async(self.broker.host, self.broker.port, keepalive=KEEPALIVE_S)
        client.loop_start()  # its thread connects, and reconnects whenever the broker goes away
        self._client = client

    def publish(self, message: Message) -> None:
        assert self._client is not None, "publish before start"
        info = self._client.publish(self._topic(message), message.payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return  # not taken: never acknowledged, so published again after the next reconnection
        self._noted(info.mid, message.unique_id)

    def close(self) -> None:
        client, self._client = self._client, None
        if client is None:
            return
        if self._connected and self._source is not None:
            goodbye = station_status(self._source, StationState.OFFLINE, time.time())
            info = client.publish(self._topic(goodbye), goodbye.payload, qos=1, retain=True)
            info.wait_for_publish(GOODBYE_S)
        client.disconnect()
        client.loop_stop()
        self._connected = False

    def _topic(self, message: Message) -> str:
        return f"{self.broker.prefix}/{message.topic}"

    def _noted(self, mid: int, unique_id: str | None) -> None:
        with self._lock:
            if mid not in self._early:
                self._waiting[mid] = unique_id
                return
            self._early.discard(mid)
        if unique_id is not None:
            self._on_acked(unique_id)

    def _connect(self, client: mqtt.Client, _data: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if reason.is_failure:
            return
        if self._source is not None:  # paho's thread: no acknowledgement can come before it is noted
            online = station_status(self._source, StationState.ONLINE, time.time())
            info = client.publish(self._topic(online), online.payload, qos=1, retain=True)
            self._noted(info.mid, None)
        self._connected = True

    def _disconnect(self, _client: mqtt.Client, _data: Any, _flags: Any, _reason: Any, _properties: Any) -> None:
        self._connected = False

    def _published(self, _client: mqtt.Client, _data: Any, mid: int, _reason: Any, _properties: Any) -> None:
        with self._lock:
            if mid not in self._waiting:
                self._early.add(mid)
                return
            unique_id = self._waiting.pop(mid)
        if unique_id is not None:
            self._on_acked(unique_id)
