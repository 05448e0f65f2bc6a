"""A Mosquitto of the benchmark's own, on a free loopback port, and a subscriber that stamps what it hears.

The broker is ``mosquitto -c CONF`` with a listener on 127.0.0.1 only, anonymous, no persistence, and
no limit on the messages queued for a subscriber (so a slow one loses none);
``start`` waits until it accepts connections, ``stop`` ends it (SIGTERM). The subscriber is a paho-mqtt
client subscribed with QoS 1 to ``PREFIX/#``, calling ``heard(topic, payload, when)`` from its network
thread with ``when`` the wall-clock time (``time.time()``) the message came.
"""

from __future__ import annotations

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
from paho.mqtt.enums import CallbackAPIVersion

MOSQUITTO = shutil.which("mosquitto") or next(
    (p for p in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto") if Path(p).is_file()), None
)


class BrokerMissing(RuntimeError):
    """No ``mosquitto`` binary on this host."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Mosquitto:
    """One broker process on a free loopback port, its config and log in ``directory``."""

    def __init__(self, directory: Path) -> None:
        if MOSQUITTO is None:
            raise BrokerMissing("mosquitto is not installed: apt-get install mosquitto")
        self.directory = directory
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    def url(self, prefix: str) -> str:
        return f"mqtt://127.0.0.1:{self.port}/{prefix}"

    def start(self) -> Mosquitto:
        assert MOSQUITTO is not None
        self.directory.mkdir(parents=True, exist_ok=True)
        config = self.directory / "mosquitto.conf"
        # No limit on what waits for a subscriber (by default 1000, the rest dropped): the bench hears every event.
        lines = [
            f"listener {self.port} 127.0.0.1",
            "allow_anonymous true",
            "persistence false",
            "max_queued_messages 0",
        ]
        config.write_text("\n".join(lines) + "\n")
        log = self.directory / "mosquitto.log"
        with log.open("ab") as out:
            self.process = subprocess.Popen([MOSQUITTO, "-c", str(config)], stdout=out, stderr=out)
        deadline = time.monotonic() + 10.0
        while not self._listening():
            if self.process.poll() is not None:
                raise RuntimeError(f"mosquitto exited {self.process.returncode}: {log.read_text(errors='replace')}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mosquitto did not listen on port {self.port} within 10 s")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(10)
        self.process = None

    def __enter__(self) -> Mosquitto:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _listening(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), 0.2).close()
        except OSError:
            return False
        return True


class Subscriber:
    """A QoS 1 subscriber to ``prefix/#`` on the broker at loopback ``port``, subscribed once ``__init__`` returns."""

    def __init__(self, port: int, prefix: str, heard: Callable[[str, bytes, float], None]) -> None:
        self.prefix = prefix
        self._heard = heard
        self._subscribed = threading.Event()
        self.client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{time.monotonic_ns()}")
        self.client.on_connect = self._connected
        self.client.on_message = self._message
        self.client.on_subscribe = lambda *_: self._subscribed.set()
        self.client.connect("127.0.0.1", port, keepalive=30)
        self.client.loop_start()
        if not self._subscribed.wait(10.0):
            self.close()
            raise RuntimeError(f"no subscription to {prefix}/# on port {port} within 10 s")

    def _connected(self, client: Any, _data: Any, _flags: Any, reason: Any, _properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(f"{self.prefix}/#", qos=1)

    def _message(self, _client: Any, _data: Any, message: Any) -> None:
        self._heard(message.topic, message.payload, time.time())

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def __enter__(self) -> Subscriber:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def count(port: int, prefix: str, kind: str, expected: int) -> None:
    """Hear ``expected`` distinct messages of ``kind`` (by their UniqueID) under ``prefix/#``; say when.

    Prints ``subscribed`` once subscribed, then ``heard FIRST LAST`` (wall-clock times of the first and the
    last) once all have come: what a consumer of the line in a process of its own sees.
    """
    ids: set[bytes] = set()
    first: list[float] = []
    last: list[float] = []
    done = threading.Event()
    marker, suffix = b'"UniqueID":"', "/" + kind

    def heard(topic: str, payload: bytes, when: float) -> None:
        if not topic.endswith(suffix):
            return
        start = payload.index(marker) + len(marker)
        ids.add(payload[start : payload.index(b'"', start)])
        if not first:
            first.append(when)
        if len(ids) >= expected and not done.is_set():
            last.append(when)
            done.set()

    with Subscriber(port, prefix, heard):
        print("subscribed", flush=True)
        done.wait()
        print(f"heard {first[0]!r} {last[0]!r}", flush=True)


if __name__ == "__main__":
    import sys

    count(int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4]))
