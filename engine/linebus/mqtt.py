"""The MQTT sink: ``mqtt://[user[:password]@]host[:port]/prefix`` (port 1883 by default), with paho-mqtt.

Every line event is published with QoS 1 under ``prefix/`` and counted as delivered when the broker
acknowledges it (PUBACK). On every connection the station's status is published retained, online;
the broker publishes the retained offline status (the last will) when the station drops without
saying goodbye, and a station that stops cleanly publishes it itself. It keeps no queue of its own:
what is not yet acknowledged is paho's, bounded by the publisher's window (``INFLIGHT``).

paho runs no thread here: the sink is a ``DrivenSink``, its connection's reads, writes and keepalive
done by paho's ``loop_read``, ``loop_write`` and ``loop_misc`` from the publisher's thread, so a
message is written to the socket in the call that publishes it. When the connection is lost the sink
connects again, waiting 1 second at first, then twice as long each time it fails, up to 5.
"""

from __future__ import annotations

import os
import select
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
RETRY_S = (1.0, 5.0)
"""The first and the longest wait before connecting again."""
CONNECT_TIMEOUT_S = 2.0
"""How long one try to connect may take (the publisher's thread waits for it)."""


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
        client.connect_timeout = CONNECT_TIMEOUT_S
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
        self._waiting: dict[int, str | None] = {}
        """The UniqueID of each message paho has (by its mid) until the broker acknowledges it."""
        self._retry_at = 0.0
        self._retry_s = RETRY_S[0]

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
        self._client, self._retry_at = client, 0.0  # the first pump connects

    def fileno(self) -> int | None:
        connection = None if self._client is None else self._client.socket()
        return None if connection is None else connection.fileno()

    def wants_write(self) -> bool:
        return self._client is not None and self._client.want_write()

    def pump(self, readable: bool, writable: bool) -> None:
        client = self._client
        if client is None:
            return
        if client.socket() is None:
            if time.monotonic() >= self._retry_at:
                try:
                    client.reconnect()  # the CONNACK is read by a later pump
                except OSError:
                    self._lost()
            return
        if readable:
            client.loop_read()
        if (writable or client.want_write()) and client.socket() is not None:
            client.loop_write()
        if client.socket() is not None:
            client.loop_misc()

    def publish(self, message: Message) -> None:
        assert self._client is not None, "publish before start"
        info = self._client.publish(self._topic(message), message.payload, qos=1)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            return  # not taken: never acknowledged, so published again after the next reconnection
        self._waiting[info.mid] = message.unique_id

    def close(self) -> None:
        client = self._client
        if client is None:
            return
        if self._connected and self._source is not None:
            goodbye = station_status(self._source, StationState.OFFLINE, time.time())
            info = client.publish(self._topic(goodbye), goodbye.payload, qos=1, retain=True)
            self._drive_until(info.is_published, GOODBYE_S)
        client.disconnect()
        self._drive_until(lambda: client.socket() is None, GOODBYE_S)  # the broker hangs up: paho closes
        self._client, self._connected = None, False

    def _drive_until(self, done: Callable[[], bool], patience_s: float) -> None:
        deadline = time.monotonic() + patience_s
        while not done() and (connection := self.fileno()) is not None and time.monotonic() < deadline:
            writers = [connection] if self.wants_write() else []
            readable, writable, _ = select.select([connection], writers, [], 0.05)
            self.pump(bool(readable), bool(writable))

    def _topic(self, message: Message) -> str:
        return f"{self.broker.prefix}/{message.topic}"

    def _lost(self) -> None:
        """No connection: try again after the wait, and wait longer the next time."""
        self._connected = False
        self._retry_at = time.monotonic() + self._retry_s
        self._retry_s = min(self._retry_s * 2, RETRY_S[1])

    def _connect(self, client: mqtt.Client, _data: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if reason.is_failure:
            return  # paho hangs up: _disconnect
        if self._source is not None:
            online = station_status(self._source, StationState.ONLINE, time.time())
            info = client.publish(self._topic(online), online.payload, qos=1, retain=True)
            self._waiting[info.mid] = None
        self._connected, self._retry_s = True, RETRY_S[0]

    def _disconnect(self, _client: mqtt.Client, _data: Any, _flags: Any, _reason: Any, _properties: Any) -> None:
        self._lost()

    def _published(self, _client: mqtt.Client, _data: Any, mid: int, _reason: Any, _properties: Any) -> None:
        unique_id = self._waiting.pop(mid, None)
        if unique_id is not None:
            self._on_acked(unique_id)
