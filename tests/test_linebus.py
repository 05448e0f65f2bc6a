"""The line's events leave the outbox: the publisher's order, acknowledgements and restarts (over a sink of
the test's own), and a station telling a real Mosquitto (one of the tests' own, stopped and started again
mid-run) every event its store keeps, once after dropping copies by id, in order for each unit."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from mosquittokit import Collector, Mosquitto, free_port, need_mosquitto, retained, until

from engine.linebus.mqtt import Broker, MqttSink
from engine.linebus.publisher import IDLE_S, MARK_S, Publisher
from engine.linebus.sink import SinkError, sink_for
from engine.linebus.tail import shown
from engine.messages import Message, Source, unit_started
from engine.store import SqlStore, open_store

ROOT = Path(__file__).resolve().parent.parent
THERMOSTAT = str(ROOT / "workflows" / "sphere-thermostat.yaml")
SOURCE = Source("line-1", "fixture")
UNITS = [f"EV{n:04d}" for n in range(1, 7)]


class FakeSink:
    """A sink the test drives: it keeps what it was handed, and acknowledges what the test says."""

    shown = "fake://"

    def __init__(self) -> None:
        self.connected = True
        self.sent: list[Message] = []
        self.closed = False
        self.on_acked: Callable[[str], None] = lambda unique_id: None
        self.gate = threading.Event()
        self.gate.set()

    def start(self, source: Source | None, on_acked: Callable[[str], None]) -> None:
        self.on_acked = on_acked

    def publish(self, message: Message) -> None:
        self.gate.wait()
        self.sent.append(message)

    def close(self) -> None:
        self.closed = True


@pytest.fixture
def store() -> Iterator[SqlStore]:
    with open_store("sqlite://") as opened:
        opened.tell_line(SOURCE)
        yield opened


def _told(store: SqlStore, *serials: str) -> list[Message]:
    messages = [unit_started(SOURCE, serial, 1, None, None, time.time()) for serial in serials]
    for message in messages:
        store.tell(message)
    store.flush()
    return messages


def _ids(messages: list[Message]) -> list[str]:
    return [m.unique_id for m in messages]


def test_the_publisher_publishes_in_order_and_marks_only_the_acknowledged_prefix(store: SqlStore) -> None:
    """Rows go out in seq order; acknowledgements out of order mark nothing until the first row's comes, then
    every row up to the last acknowledged without a gap is marked published."""
    told = _told(store, "A", "B", "C", "D", "E")
    sink = FakeSink()
    publisher = Publisher(store, sink, SOURCE)
    publisher.start()
    until(lambda: len(sink.sent) == 5, "five rows published")
    assert _ids(sink.sent) == _ids(told)
    seqs = [seq for seq, _ in store.outbox_after(0, 10)]
    sink.on_acked(told[1].unique_id)
    sink.on_acked(told[2].unique_id)
    time.sleep(0.2)
    assert publisher.marked == 0 and store.outbox_first_unpublished() == seqs[0]
    sink.on_acked(told[0].unique_id)
    until(lambda: publisher.marked == seqs[2], "the first three marked")
    store.flush()
    assert store.outbox_first_unpublished() == seqs[3]
    publisher.close(0.1)
    assert sink.closed and store.on_written is None


def test_after_a_disconnect_the_publisher_starts_again_from_the_first_unacknowledged(store: SqlStore) -> None:
    """While the sink is away nothing is handed to it; once back, the rows not acknowledged go out again, same
    ids, in order (the acknowledged ones after a gap are not), then the rows written meanwhile."""
    told = _told(store, "A", "B", "C")
    sink = FakeSink()
    publisher = Publisher(store, sink, SOURCE)
    publisher.start()
    until(lambda: len(sink.sent) == 3, "three rows published")
    sink.on_acked(told[0].unique_id)
    sink.on_acked(told[2].unique_id)
    sink.connected = False
    meanwhile = _told(store, "D")
    time.sleep(IDLE_S + 0.3)
    assert len(sink.sent) == 3
    sink.connected = True
    until(lambda: len(sink.sent) == 5, "the unacknowledged row and the new one published")
    assert _ids(sink.sent[3:]) == [told[1].unique_id, meanwhile[0].unique_id]
    sink.on_acked(told[1].unique_id)
    sink.on_acked(meanwhile[0].unique_id)
    until(lambda: store.outbox_first_unpublished() == store.outbox_after(0, 10)[-1][0] + 1, "all marked")
    publisher.close(0.1)


def test_a_stuck_sink_never_holds_the_station_up(store: SqlStore) -> None:
    """With the sink stuck inside publish, the store goes on writing its records and their events at full speed;
    close gives up after its time."""
    sink = FakeSink()
    sink.gate.clear()
    publisher = Publisher(store, sink, SOURCE)
    publisher.start()
    started = time.monotonic()
    _told(store, *(f"U{n}" for n in range(500)))
    assert time.monotonic() - started < 2.0
    closing = time.monotonic()
    publisher.close(0.2)
    assert time.monotonic() - closing < 2.0
    sink.gate.set()
    assert store.outbox_first_unpublished() == store.outbox_after(0, 1)[0][0]


class Marks:
    """A store's marks, counted: what a publisher given ``marks`` writes through it."""

    def __init__(self, store: SqlStore) -> None:
        self.store = store
        self.on_written = None
        self.up_to: list[int] = []

    def outbox_published(self, up_to: int) -> None:
        self.up_to.append(up_to)
        self.store.outbox_published(up_to)


def test_acknowledged_events_are_marked_together_through_the_marks_connection(tmp_path: Path) -> None:
    """Acknowledgements coming one by one are marked in one write, once the first has waited MARK_S, and through
    the publisher's marks connection, not the one it reads through."""
    url = f"sqlite:///{tmp_path / 'outbox.db'}"
    with open_store(url) as store, open_store(url) as other:
        store.tell_line(SOURCE)
        other.tell_line(SOURCE)
        told = _told(store, "A", "B", "C")
        marks = Marks(other)
        sink = FakeSink()
        publisher = Publisher(store, sink, SOURCE, marks=marks)
        publisher.start()
        until(lambda: len(sink.sent) == 3, "three rows published")
        acked = time.monotonic()
        for message in told:
            sink.on_acked(message.unique_id)
            time.sleep(0.02)
        until(lambda: marks.up_to, "the mark")
        assert time.monotonic() - acked >= MARK_S * 0.9
        assert marks.up_to == [seq for seq, _ in store.outbox_after(0, 10)][-1:]
        other.flush()
        assert store.outbox_first_unpublished() == marks.up_to[0] + 1
        publisher.close(0.1)


def test_the_publisher_process_runs_at_the_lowest_priority(tmp_path: Path) -> None:
    """python -m engine.linebus lowers its own CPU priority to NICENESS: the station's units come first."""
    from engine.linebus.__main__ import NICENESS

    command = [sys.executable, "-m", "engine.linebus", "--store", f"sqlite:///{tmp_path / 'x.db'}"]
    command += ["--events", f"mqtt://127.0.0.1:{free_port()}/plant", "--line", "line1", "--station", "final"]
    process = subprocess.Popen(command, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        base = os.getpriority(os.PRIO_PROCESS, 0)
        until(lambda: os.getpriority(os.PRIO_PROCESS, process.pid) != base, "the publisher to lower its priority")
        assert os.getpriority(os.PRIO_PROCESS, process.pid) == min(19, base + NICENESS)
    finally:
        assert process.stdin is not None
        process.stdin.close()
        process.wait(30)
    assert process.returncode == 0, process.stderr.read() if process.stderr else ""


def test_a_sink_url_is_checked() -> None:
    """An unknown scheme names the known ones; an mqtt URL without a host or prefix, or with a bad port, is
    refused in one line naming it; the default port is 1883 and a password is not shown."""
    with pytest.raises(SinkError, match=r"no sink for kafka \(known: mqtt://\)"):
        sink_for("kafka://broker/plant")
    with pytest.raises(SinkError, match="did you mean 'mqtt'"):
        sink_for("mqt://broker/plant")
    for bad in ("mqtt:///plant", "mqtt://host", "mqtt://host/", "mqtt://host:99999/p", "mqtt://host/a/#"):
        with pytest.raises(SinkError, match="--events"):
            sink_for(bad)
    assert isinstance(sink_for("mqtt://broker/plant/a"), MqttSink)
    broker = Broker.parse("mqtt://ann:secret@broker/plant/a")
    assert (broker.port, broker.prefix, broker.password) == (1883, "plant/a", "secret")
    assert "secret" not in broker.shown
    with pytest.raises(SinkError) as caught:
        Broker.parse("mqtt://ann:secret@/plant")
    assert "secret" not in str(caught.value)


def test_an_event_is_shown_in_one_line() -> None:
    """tail's line: time, topic, message name (with the stage), unit, result; anything else says it is not one."""
    message = unit_started(SOURCE, "SN1", 2, "L7", "ann", 0.0)
    line = shown("plant/" + message.topic, message.payload)
    assert line == "1970-01-01T00:00:00+00:00  plant/line-1/fixture/2/unit-started  UnitStarted  SN1  -"
    assert shown("plant/x", b"\xff") == "-  plant/x  (not a line event: 1 bytes)"


# -- against a real Mosquitto -------------------------------------------------------------------------------


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    started = Mosquitto(tmp_path).start()
    yield started
    started.stop()


def _floorflow(*args: str) -> list[str]:
    return [sys.executable, "-m", "engine.cli", *args]


def _station(store: str, events: str, *extra: str) -> list[str]:
    units = [arg for serial in UNITS for arg in ("--unit", serial)]
    run = ["run", THERMOSTAT, "--sim", "--station", "fixture", "--slots", "3", *units, "--store", store]
    return _floorflow(*run, "--events", events, "--line", "line-1", *extra)


def _hanging(tmp_path: Path, seconds: float) -> str:
    config = tmp_path / "sim.yaml"
    config.write_text(
        "units:\n" + "".join(f"  {s}:\n    hang: {{connect: {seconds}, functional: {seconds}}}\n" for s in UNITS)
    )
    return str(config)


def _outbox(store: str) -> list[tuple[int, Message]]:
    with open_store(store) as records:
        return records.outbox_after(0, 100_000)


def _first_arrivals(heard: list[tuple[str, bytes, bool]]) -> list[dict[str, object]]:
    """The events heard, each the first time its UniqueID came (station statuses left out)."""
    seen: set[str] = set()
    events = []
    for topic, payload, _ in heard:
        event = orjson.loads(payload)
        if topic.endswith("/status") or event["UniqueID"] in seen:
            continue
        seen.add(event["UniqueID"])
        events.append(event)
    return events


def _state(payload: bytes | None) -> object:
    return None if payload is None else orjson.loads(payload)["MessageBody"]["State"]


def test_every_event_arrives_once_in_order_though_the_broker_restarts(tmp_path: Path) -> None:
    """A station of 3 sockets runs 6 units while its broker is stopped and started again on the same port: every
    event its outbox holds arrives, once after dropping copies by UniqueID, in order for each unit; its retained
    status reads online while it runs and offline once it stopped cleanly."""
    mosquitto = Mosquitto(tmp_path, persistent=True).start()  # the collector's session outlives the restart
    collector = Collector(mosquitto)
    store = f"sqlite:///{tmp_path / 'x.db'}"
    run = subprocess.Popen(
        _station(store, mosquitto.url(), "--sim-config", _hanging(tmp_path, 1.0)),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        until(lambda: len(collector.messages()) >= 4, "the first events")
        assert _state(retained(mosquitto, "plant/line-1/fixture/status")) == "online"
        before = len(_first_arrivals(collector.messages()))
        mosquitto.stop()
        time.sleep(1.5)
        mosquitto.start()
        out, err = run.communicate(timeout=120)
        assert run.returncode == 0, out + err
        kept = _outbox(store)
        wanted = {m.unique_id for _, m in kept}
        until(lambda: wanted <= {e["UniqueID"] for e in _first_arrivals(collector.messages())}, "every event")
        time.sleep(0.3)
        heard = _first_arrivals(collector.messages())
        assert len(kept) > max(before, 6 * 4) and {e["UniqueID"] for e in heard} == wanted
        for serial in UNITS:
            mine = [m.unique_id for _, m in kept if m.serial == serial]
            assert [e["UniqueID"] for e in heard if e["MessageBody"].get("UnitIdentifier") == serial] == mine
        assert _state(retained(mosquitto, "plant/line-1/fixture/status")) == "offline"
    finally:
        run.kill()
        collector.close()
        mosquitto.stop()


def test_a_killed_station_reads_offline_through_its_last_will(tmp_path: Path, broker: Mosquitto) -> None:
    """SIGKILL leaves the station no word to say: the broker publishes its last will, the retained offline."""
    store = f"sqlite:///{tmp_path / 'x.db'}"
    run = subprocess.Popen(
        _station(store, broker.url(), "--sim-config", _hanging(tmp_path, 30.0)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: _state(retained(broker, "plant/line-1/fixture/status", 0.5)) == "online", "online")
    finally:
        os.kill(run.pid, signal.SIGKILL)
        run.wait()
    until(lambda: _state(retained(broker, "plant/line-1/fixture/status", 0.5)) == "offline", "offline", 10.0)


def test_without_its_broker_a_station_runs_at_full_speed_and_replay_publishes_later(tmp_path: Path) -> None:
    """A station whose broker never comes up runs its units as fast as without events and exits 0, its outbox
    holding every event unpublished; `floorflow events replay` publishes them all once the broker is there."""
    store = f"sqlite:///{tmp_path / 'x.db'}"
    nowhere = f"mqtt://127.0.0.1:{free_port()}/plant"
    started = time.monotonic()
    ran = subprocess.run(_station(store, nowhere), capture_output=True, text=True, timeout=120)
    took = time.monotonic() - started
    assert ran.returncode == 0, ran.stdout + ran.stderr
    started = time.monotonic()
    plain = subprocess.run(
        _floorflow(
            "run",
            THERMOSTAT,
            "--sim",
            "--station",
            "fixture",
            "--slots",
            "3",
            *(a for s in UNITS for a in ("--unit", s)),
        ),
        capture_output=True,
        timeout=120,
    )
    assert plain.returncode == 0
    assert took < time.monotonic() - started + 2.0 + 2.0  # the close's grace, and slack
    kept = _outbox(store)
    with open_store(store) as records:
        assert kept and records.outbox_first_unpublished() == kept[0][0]
    mosquitto = Mosquitto(tmp_path).start()
    collector = Collector(mosquitto)
    try:
        replay = ["events", "replay", "--since", "2000-01-01", "--events", mosquitto.url(), "--store", store]
        done = subprocess.run(_floorflow(*replay), capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stdout + done.stderr
        assert done.stdout == f"{len(kept)} events published again to mqtt://127.0.0.1:{mosquitto.port}/plant\n"
        wanted = [m.unique_id for _, m in kept]
        until(lambda: len(_first_arrivals(collector.messages())) == len(kept), "the replayed events")
        assert [e["UniqueID"] for e in _first_arrivals(collector.messages())] == wanted
    finally:
        collector.close()
        mosquitto.stop()


def test_events_tail_prints_each_event_and_ends_on_ctrl_c(tmp_path: Path, broker: Mosquitto) -> None:
    """tail prints one line per event as it comes; Ctrl-C ends it with exit 0."""
    tail = subprocess.Popen(
        _floorflow("events", "tail", broker.url()), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        time.sleep(1.0)
        store = f"sqlite:///{tmp_path / 'x.db'}"
        ran = subprocess.run(_station(store, broker.url()), capture_output=True, text=True, timeout=120)
        assert ran.returncode == 0, ran.stderr
        time.sleep(1.0)
    finally:
        tail.send_signal(signal.SIGINT)
        out, err = tail.communicate(timeout=10)
    assert tail.returncode == 0, err
    lines = out.splitlines()
    assert any(" plant/line-1/fixture/1/unit-started  UnitStarted  EV0001  -" in line for line in lines), out
    assert any("AttemptEnded connect  EV0001  Passed" in line for line in lines), out
    assert len(lines) >= len(_outbox(store))


def test_tail_and_run_say_what_is_wrong_in_one_line(tmp_path: Path) -> None:
    """tail with no broker there: exit 4 in one line; run with an --events URL no sink takes, or --line
    without --events: exit 2 in one line, before anything runs."""
    need_mosquitto()
    tail = subprocess.run(
        _floorflow("events", "tail", f"mqtt://127.0.0.1:{free_port()}/plant"),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert tail.returncode == 4 and tail.stderr.count("\n") == 1 and "not there" in tail.stderr, tail.stderr
    store = f"sqlite:///{tmp_path / 'x.db'}"
    for events in ("kafka://x/plant", "mqtt://127.0.0.1/"):
        ran = subprocess.run(_station(store, events), capture_output=True, text=True, timeout=60)
        assert ran.returncode == 2 and ran.stderr.count("\n") == 1 and "--events" in ran.stderr, ran.stderr
    lone = _floorflow("run", THERMOSTAT, "--sim", "--unit", "A1", "--line", "l")
    ran = subprocess.run(lone, capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2 and "--line goes with --events" in ran.stderr
    slashed = subprocess.run([*_station(store, "mqtt://127.0.0.1/plant"), "--line", "hall/2"], capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert slashed.returncode == 2 and "'/' cannot be in a topic level" in slashed.stderr, slashed.stderr
    assert not (tmp_path / "x.db").exists()


def test_the_publisher_process_says_why_it_ended_and_the_station_is_not_held_up(tmp_path: Path) -> None:
    """A publisher process that cannot open its store ends at once with one line; closing it returns."""
    from engine.linebus.process import PublisherProcess, shareable

    assert not shareable("sqlite://") and not shareable("sqlite:///:memory:")
    assert shareable(f"sqlite:///{tmp_path / 'x.db'}") and shareable("postgresql://127.0.0.1/test")
    process = PublisherProcess("nosuch://store", "mqtt://127.0.0.1:1/plant", Source("line1", "final"), 0.5)
    wake = process.start()
    wake()
    process.close()
    assert process.error is not None and process.error.startswith("error: line events are not published:")


def test_a_station_tells_the_line_each_units_start_attempts_and_end(tmp_path: Path, broker: Mosquitto) -> None:
    """floorflow station --events: each listed unit's UnitStarted, AttemptEnded and UnitFinished reach the
    line in that order under plant/LINE/STATION/SOCKET/..., and its outbox reads every event published."""
    store = f"sqlite:///{tmp_path / 'x.db'}"
    collector = Collector(broker)
    try:
        shift = _station(store, broker.url())
        shift[shift.index("run")] = "station"
        ran = subprocess.run(shift, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert ran.returncode == 0, ran.stderr
        with open_store(store) as kept:
            outbox = [message for _, message in kept.outbox_after(0, 10_000)]
            assert kept.outbox_first_unpublished() == len(outbox) + 1  # every one marked published
        wanted = {message.unique_id for message in outbox}
        until(lambda: wanted <= {orjson.loads(p)["UniqueID"] for _, p, _ in collector.messages()}, "every event")
    finally:
        collector.close()
    for serial in UNITS:
        names = [
            orjson.loads(payload)["MessageName"]
            for topic, payload, _ in collector.messages()
            if not topic.endswith("/status") and orjson.loads(payload)["MessageBody"].get("UnitIdentifier") == serial
        ]
        assert names[0] == "floorflow.UnitStarted" and names[-1] == "floorflow.UnitFinished", (serial, names)
        assert set(names[1:-1]) == {"floorflow.AttemptEnded"}, (serial, names)
    topics = {topic for topic, _, _ in collector.messages()}
    assert any(topic.startswith("plant/line-1/fixture/1/") for topic in topics), topics
