"""A Mosquitto of the tests' own: on a free loopback port, stopped and started again on the same port,
and a subscriber that keeps what it hears.

Tests needing it skip when ``mosquitto`` is not installed, and fail instead with
``FLOORFLOW_REQUIRE_MQTT=1`` (as .ci/run sets).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
)
PATIENCE_S = 30.0


def need_mosquitto() -> str:
    """The mosquitto binary; the test is skipped without one (failed under FLOORFLOW_REQUIRE_MQTT=1)."""
    if MOSQUITTO is None:
        if os.environ.get("FLOORFLOW_REQUIRE_MQTT") == "1":
            pytest.fail("mosquitto is not installed (FLOORFLOW_REQUIRE_MQTT=1): apt-get install mosquitto")
        pytest.skip("mosquitto is not installed")
    return MOSQUITTO


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def until(done: Callable[[], bool], what: str, patience_s: float = PATIENCE_S) -> None:
    deadline = time.monotonic() + patience_s
    while not done():
        if time.monotonic() > deadline:
            pytest.fail(f"waited {patience_s:g} s for {what}")
        time.sleep(0.02)


class Mosquitto:
    """One broker process on ``port``; ``persistent`` keeps retained messages and sessions across a restart."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.binary = need_mosquitto()
        self.directory = directory
        self.port = free_port()
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, prefix: str = "plant") -> str:
        return f"mqtt://127.0.0.1:{self.port}/{prefix}"

    def start(self) -> Mosquitto:
        config = self.directory / "mosquitto.conf"
        lines = [f"listener {self.port} 127.0.0.1", "allow_anonymous true"]
        if self.persistent:
            lines += ["persistence true", f"persistence_location {self.directory}/", "autosave_interval 0"]
        else:
            lines.append("persistence false")
        config.write_text("\n".join(lines) + "\n")
        log = (self.directory / "mosquitto.log").open("ab")
        self.process = subprocess.Popen([self.binary, "-c", str(config)], stdout=log, stderr=log)
        until(self._listening, f"mosquitto on port {self.port}", 10.0)
        return self

    def stop(self) -> None:
        """A clean stop (SIGTERM): a persistent broker saves its sessions and retained messages."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def _listening(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            log = (self.directory / "mosquitto.log").read_text(errors="replace")
            pytest.fail(f"mosquitto exited {self.process.returncode}: {log}")
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
        except OSError:
            return False
        return True


class Collector:
    """A subscriber to ``prefix/#`` with QoS 1 and a persistent session (clean_session False): it keeps
    ``(topic, payload, retained)`` of every message, in the order they came."""

    def __init__(self, broker: Mosquitto, prefix: str = "plant", name: str = "collector") -> None:
        self.prefix = prefix
        self.heard: list[tuple[str, bytes, bool]] = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{name}", clean_session=False)
        self.client.reconnect_delay_set(min_delay=1, max_delay=1)
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.connect("127.0.0.1", broker.port, keepalive=10)
        self.client.loop_start()
        until(self.subscribed.is_set, "the collector's subscription", 10.0)

    def _connected(self, client: Any, _data: Any, flags: Any, reason: Any, _properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{self.prefix}/#", qos=1)

    def _message(self, _client: Any, _data: Any, message: Any) -> None:
        with self._lock:
            self.heard.append((message.topic, bytes(message.payload), bool(message.retain)))

    def messages(self) -> list[tuple[str, bytes, bool]]:
        with self._lock:
            return list(self.heard)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(broker: Mosquitto, topic: str, patience_s: float = 5.0) -> bytes | None:
    """The message the broker retains on ``topic`` (None: none within ``patience_s``)."""
    got: list[bytes] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2)
    client.on_connect = lambda c, *_: c.subscribe(topic, qos=1)
    client.on_message = lambda _c, _d, m: got.append(bytes(m.payload)) if m.retain else None
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    deadline = time.monotonic() + patience_s
    while not got and time.monotonic() < deadline:
        time.sleep(0.02)
    client.disconnect()
    client.loop_stop()
    return got[-1] if got else None
