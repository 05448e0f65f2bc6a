"""The label printer adapter against the simulated printer: ZPL and ~HS over loopback TCP, PNG previews."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from engine.outcome import StationError
from steps.hardware.printer import LABEL_SIZE, PrinterStatus, ZplPrinter, parse_host_status, render_preview
from steps.label_print import render_zpl
from steps.sim.printer import SimPrinterServer

FIELDS = [
    ("serial", "SIM00000001"),
    ("imei", "356938035643809"),
    ("bt_mac", "02:46:46:00:00:01"),
    ("wifi_mac", "02:46:46:00:00:02"),
]


@pytest.fixture
def server() -> Iterator[SimPrinterServer]:
    printer = SimPrinterServer()
    yield printer
    printer.close()


def label(serial: str, fields: list[tuple[str, str]] = FIELDS) -> str:
    return render_zpl("unit", serial, fields)


def test_a_label_arrives_intact(server: SimPrinterServer) -> None:
    """The document the printer keeps is the ZPL sent, byte for byte (UTF-8 included)."""
    fields = [*FIELDS, ("note", "Prüfung ^ ~ _ done")]
    zpl = label("SN1", fields)
    assert ZplPrinter(server.address).print_label("SN1", zpl, fields) is None
    assert server.wait_labels(1, "SN1") == [zpl.strip()]


def test_labels_are_told_apart_by_unit(server: SimPrinterServer) -> None:
    """labels(serial) holds that unit's labels only, even when one serial starts another."""
    printer = ZplPrinter(server.address)
    for serial in ("SN1", "SN10", "SN1"):
        printer.print_label(serial, label(serial), FIELDS)
    assert len(server.wait_labels(3)) == 3
    assert len(server.labels("SN1")) == 2 and len(server.labels("SN10")) == 1 and server.labels("SN2") == []


def test_status_reads_the_flags(server: SimPrinterServer) -> None:
    """~HS reports each flag the simulated printer has raised."""
    printer = ZplPrinter(server.address)
    assert printer.status() == PrinterStatus(paper_out=False, paused=False, head_open=False)
    server.paper_out, server.head_open = True, True
    assert printer.status() == PrinterStatus(paper_out=True, paused=False, head_open=True)


FLAGS = [("paper_out", "paper out"), ("head_open", "head open"), ("paused", "paused")]


@pytest.mark.parametrize(("flag", "words"), FLAGS)
def test_a_printer_that_cannot_print_refuses_the_label(server: SimPrinterServer, flag: str, words: str) -> None:
    """Paper out, head open or pause: StationError naming it, and the label is not sent."""
    printer = ZplPrinter(server.address)
    setattr(server, flag, True)
    with pytest.raises(StationError, match=rf"at {server.address} reports {words}: the label of unit SN1 was not"):
        printer.print_label("SN1", label("SN1"), FIELDS)
    setattr(server, flag, False)
    printer.print_label("SN2", label("SN2"), FIELDS)
    assert len(server.wait_labels(1)) == 1
    assert server.labels("SN1") == []


def test_a_refused_connection_names_the_address() -> None:
    """Nothing listening: StationError naming the printer's address."""
    server = SimPrinterServer()
    address = server.address
    server.close()
    server.close()  # harmless twice
    with pytest.raises(StationError, match=rf"the label printer at {address} does not answer"):
        ZplPrinter(address, timeout_s=1.0).print_label("SN1", label("SN1"), FIELDS)


def test_a_reply_that_is_not_host_status_is_shown() -> None:
    """A device on the port that answers ~HS with something else: StationError quoting it."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        listener.settimeout(10.0)  # a broken adapter fails the test instead of hanging it

        def answer() -> None:
            connection, _ = listener.accept()
            with connection:
                connection.recv(16)
                connection.sendall(b"HTTP/1.0 400 Bad Request\r\n")

        thread = threading.Thread(target=answer)
        thread.start()
        printer = ZplPrinter(f"127.0.0.1:{listener.getsockname()[1]}")
        with pytest.raises(StationError, match=r"answered ~HS with not a host-status reply: b'HTTP/1.0 400"):
            printer.status()
        thread.join()


def test_parse_host_status_reads_the_documented_fields() -> None:
    """String 1 fields 2 and 3 are paper out and pause; string 2 field 3 is head up."""
    reply = (
        b"\x02030,1,0,1218,000,0,0,0,000,0,0,0\x03\r\n\x02000,0,1,0,0,2,6,0,00000000,1,000\x03\r\n\x021234,0\x03\r\n"
    )
    assert parse_host_status(reply) == PrinterStatus(paper_out=True, paused=False, head_open=True)
    with pytest.raises(ValueError, match="not 0 or 1"):
        parse_host_status(reply.replace(b"030,1,0", b"030,x,0"))


def test_previews_are_numbered_pngs_of_the_label(server: SimPrinterServer, tmp_path: Path) -> None:
    """Each print leaves <serial>-<n>.png, 812 dots wide, the serial percent-encoded."""
    printer = ZplPrinter(server.address, preview_dir=tmp_path / "labels")
    first = printer.print_label("SN/1", label("SN/1"), FIELDS)
    again = printer.print_label("SN/1", label("SN/1"), FIELDS)
    assert first == tmp_path / "labels" / "SN%2F1-1.png"
    assert again == tmp_path / "labels" / "SN%2F1-2.png"
    with Image.open(first) as image:
        assert image.format == "PNG" and image.size == LABEL_SIZE == (812, 609)
    assert sorted(p.name for p in (tmp_path / "labels").iterdir()) == ["SN%2F1-1.png", "SN%2F1-2.png"]


def test_previews_show_the_values(tmp_path: Path) -> None:
    """Different identities draw different labels; the same ones draw the same label."""
    other = [(kind, value.replace("1", "7")) for kind, value in FIELDS]
    paths = [tmp_path / "a.png", tmp_path / "b.png", tmp_path / "c.png"]
    for fields, path in zip((FIELDS, other, FIELDS), paths, strict=True):
        render_preview(fields, path)
    pixels = []
    for path in paths:
        with Image.open(path) as image:
            pixels.append(image.convert("L").tobytes())
    assert pixels[0] != pixels[1] and pixels[0] == pixels[2]
    assert min(pixels[0]) == 0, "the label has black bars"


def test_a_value_code_128_cannot_encode_still_previews(tmp_path: Path) -> None:
    """A character outside Code 128 leaves the text on the preview instead of failing the label."""
    render_preview([("serial", "SN-✓")], tmp_path / "odd.png")
    with Image.open(tmp_path / "odd.png") as image:
        assert image.size == LABEL_SIZE


@pytest.mark.parametrize("address", ["", "printer:", "printer:abc", "printer:70000", ":9100", "a b:9100"])
def test_a_malformed_address_is_a_value_error(address: str) -> None:
    """The station config's printer address must be HOST[:PORT]."""
    with pytest.raises(ValueError, match="is not HOST\\[:PORT\\]"):
        ZplPrinter(address)


def test_the_port_defaults_to_9100() -> None:
    """A bare host prints on the raw port."""
    assert ZplPrinter("10.0.0.7").address == "10.0.0.7:9100"
    assert ZplPrinter("[fe80::1]:6101").address == "[fe80::1]:6101"
