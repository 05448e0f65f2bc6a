"""The label printer: ZPL II over raw TCP (port 9100), with a PNG preview of each label.

Before each label the adapter asks the printer's host status (``~HS``) and refuses to print, with
an ERROR, when the printer reports paper out, head open or pause. The label then goes over a fresh
connection, and a preview drawn with python-barcode and Pillow is written next to the records.
Those two are the ``labels`` extra: a printer that keeps previews refuses, before it prints, with a
StationError saying which extra to install when they are missing.

The host status is three lines, each framed by STX (0x02) and ETX (0x03). Of the Zebra fields,
these are read (1-based, comma-separated):

====================  ======  =======================================
field                 string  position
====================  ======  =======================================
paper out flag        1       2
pause flag            1       3
head up (open) flag   2       3
====================  ======  =======================================
"""

from __future__ import annotations

import os
import re
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote

from engine.extras import missing
from engine.outcome import StationError

if TYPE_CHECKING:
    from PIL import Image

DEFAULT_PORT = 9100
DPI = 203
LABEL_SIZE = (4 * DPI, 3 * DPI)
"""A 4 x 3 inch label, in dots: 812 x 609."""
TITLES = {"serial": "S/N", "imei": "IMEI", "bt_mac": "BT MAC", "wifi_mac": "Wi-Fi MAC"}
"""Captions of the identities, as the ZPL label prints them (steps/label_print.py)."""
_FRAME = re.compile(rb"\x02([^\x02\x03]*)\x03")
_STATUS_LIMIT = 4096
_QUIET_DOTS = 10
_CODE_X = 40 - _QUIET_DOTS
"""Where a barcode image goes, so that its first bar is at x=40 like the label's ^FO40."""


@dataclass(frozen=True)
class PrinterStatus:
    """The flags of the printer's host status that stop a label from printing."""

    paper_out: bool
    paused: bool
    head_open: bool

    @property
    def problems(self) -> tuple[str, ...]:
        """What keeps the printer from printing, in words; empty when it is ready."""
        flags = (("paper out", self.paper_out), ("head open", self.head_open), ("paused", self.paused))
        return tuple(name for name, raised in flags if raised)


def parse_host_status(reply: bytes) -> PrinterStatus:
    """The status in a ``~HS`` reply; ValueError when it is not the Zebra host-status format."""
    frames: list[bytes] = _FRAME.findall(reply)
    strings = [frame.decode("ascii", "replace").split(",") for frame in frames]
    if len(strings) < 2 or len(strings[0]) < 3 or len(strings[1]) < 3:
        raise ValueError(f"not a host-status reply: {reply!r}")

    def flag(string: int, position: int) -> bool:
        text = strings[string - 1][position - 1].strip()
        if text not in ("0", "1"):
            raise ValueError(f"host-status string {string} field {position} is {text!r}, not 0 or 1: {reply!r}")
        return text == "1"

    return PrinterStatus(paper_out=flag(1, 2), paused=flag(1, 3), head_open=flag(2, 3))


def parse_address(address: str) -> tuple[str, int]:
    """``host[:port]`` (an IPv6 host in brackets) as (host, port); ValueError when malformed."""
    match = re.fullmatch(r"(?:\[(?P<v6>[^\]]+)\]|(?P<host>[^:\s\[\]]+))(?::(?P<port>\d{1,5}))?", address.strip())
    port = int(match["port"]) if match is not None and match["port"] else DEFAULT_PORT
    if match is None or not 0 < port < 65536:
        raise ValueError(
            f"label printer address {address!r} is not HOST[:PORT] (for instance 10.0.0.7:9100; "
            f"the port defaults to {DEFAULT_PORT} and must be 1..65535)"
        )
    return match["v6"] or match["host"], port


class ZplPrinter:
    """A Zebra-compatible printer on the network (``steps.common.LabelPrinter``)."""

    def __init__(self, address: str, preview_dir: Path | None = None, timeout_s: float = 5.0) -> None:
        self.host, self.port = parse_address(address)
        self.address = f"{self.host}:{self.port}" if ":" not in self.host else f"[{self.host}]:{self.port}"
        self.preview_dir = preview_dir
        self.timeout_s = timeout_s
        self._lock = threading.Lock()
        """Slots share the printer: a status check and the label it allows go together."""

    def __repr__(self) -> str:
        return f"ZplPrinter({self.address!r})"

    def _connect(self) -> socket.socket:
        try:
            return socket.create_connection((self.host, self.port), timeout=self.timeout_s)
        except TimeoutError:
            raise StationError(
                f"the label printer at {self.address} did not accept a connection within {self.timeout_s:g} s"
            ) from None
        except OSError as exc:
            raise StationError(f"the label printer at {self.address} does not answer: {exc}") from exc

    def status(self) -> PrinterStatus:
        """The printer's host status (``~HS``)."""
        reply = b""
        with self._connect() as link:
            try:
                link.sendall(b"~HS")
                while reply.count(b"\x03") < 3 and len(reply) < _STATUS_LIMIT:
                    chunk = link.recv(1024)
                    if not chunk:
                        break
                    reply += chunk
            except TimeoutError:
                raise StationError(
                    f"the label printer at {self.address} did not answer ~HS within {self.timeout_s:g} s "
                    f"(received {reply!r})"
                ) from None
            except OSError as exc:
                raise StationError(f"the label printer at {self.address} dropped the connection: {exc}") from exc
        try:
            return parse_host_status(reply)
        except ValueError as exc:
            raise StationError(f"the label printer at {self.address} answered ~HS with {exc}") from None

    def print_label(self, serial: str, zpl: str, fields: Sequence[tuple[str, str]]) -> Path | None:
        """Print one label; returns its PNG preview (None when the printer keeps no previews)."""
        with self._lock:
            if self.preview_dir is not None:
                absent = missing(f"drawing the label previews of the printer at {self.address}", "barcode", "PIL")
                if absent is not None:
                    raise StationError(absent)
            problems = self.status().problems
            if problems:
                raise StationError(
                    f"the label printer at {self.address} reports {' and '.join(problems)}: "
                    f"the label of unit {serial} was not printed"
                )
            with self._connect() as link:
                try:
                    link.sendall(zpl.encode("utf-8"))
                    link.shutdown(socket.SHUT_WR)
                except OSError as exc:
                    raise StationError(f"sending the label to the printer at {self.address} failed: {exc}") from exc
            if self.preview_dir is None:
                return None
            try:
                path = _next_free(self.preview_dir, quote(serial, safe=""))
                render_preview(fields, path)
            except OSError as exc:
                raise StationError(
                    f"the label of unit {serial} was printed, but its preview was not written: {exc}"
                ) from exc
            return path


def _next_free(directory: Path, stem: str) -> Path:
    """``directory/<stem>-<n>.png`` for the first n from 1 not taken (a reprint keeps the first)."""
    directory.mkdir(parents=True, exist_ok=True)
    n = 1
    while (directory / f"{stem}-{n}.png").exists():
        n += 1
    return directory / f"{stem}-{n}.png"


def _barcode(value: str) -> Image.Image | None:
    """Code 128 of ``value`` with its text, 2-dot modules and 70-dot bars as the ZPL label has them."""
    from barcode import Code128
    from barcode.errors import BarcodeError
    from barcode.writer import ImageWriter

    dot_mm = 25.4 / DPI
    options = {
        "module_width": 2 * dot_mm,
        "module_height": 70 * dot_mm,
        "quiet_zone": _QUIET_DOTS * dot_mm,
        "font_size": 7,
        "text_distance": 24 * dot_mm,  # to the text's bottom: the font is about 20 dots high
        "margin_top": 0,
        "margin_bottom": 2 * dot_mm,
        "dpi": DPI,
    }
    try:
        image: Image.Image = Code128(value, writer=ImageWriter(dpi=DPI)).render(options)
    except BarcodeError:
        return None  # a character Code 128 cannot encode: the preview shows the text alone
    return image


def render_preview(fields: Sequence[tuple[str, str]], path: Path) -> None:
    """Draw the label as a PNG at ``path``: per identity a caption and its Code 128 barcode.

    The layout follows ``render_zpl``: a block of 150 dots per identity from the top, caption at
    x=40, barcode 32 dots below it. The file is written atomically.
    """
    from PIL import Image, ImageDraw, ImageFont

    label = Image.new("L", LABEL_SIZE, 255)
    draw = ImageDraw.Draw(label)
    caption = ImageFont.load_default(size=26)
    y = 30
    for kind, value in fields:
        draw.text((40, y), TITLES.get(kind, kind), font=caption, fill=0)
        code = _barcode(value)
        if code is None:
            draw.text((40, y + 32), f"{value} (not encodable as Code 128)", font=caption, fill=0)
        else:
            room = LABEL_SIZE[0] - 2 * _CODE_X
            if code.width > room:  # a long value: squeezed so the preview still shows all of it
                code = code.resize((room, code.height), Image.Resampling.NEAREST)
            label.paste(code.convert("L"), (_CODE_X, y + 32))
        y += 150
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        label.save(partial, format="PNG")
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
