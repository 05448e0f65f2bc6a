"""A simulated Zebra label printer on loopback: keeps every label it receives, answers ``~HS``.

Whatever a client sends is one stream of ZPL II, as on the printer's raw port 9100: each
``^XA ... ^XZ`` is a label document, and ``~HS`` (a tilde command, acted on as soon as it arrives,
even inside a label) is answered with a host-status reply in the Zebra format that
``steps.hardware.printer`` reads. Tests raise ``paper_out``, ``head_open`` or ``paused``.
"""

from __future__ import annotations

import codecs
import re
import socket
import threading

from steps.sim.loopback import LoopbackServer

_UNIT = re.compile(r"\^FX\s*unit\s+([^\^~\r\n]*)")
"""The comment the label step puts in each label: ``^FX unit <serial>^FS``."""


class SimPrinterServer(LoopbackServer):
    def __init__(self) -> None:
        self.paper_out = False
        self.head_open = False
        self.paused = False
        self._documents: list[str] = []
        self._received = threading.Condition()
        super().__init__("sim-printer")

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def host_status(self) -> bytes:
        """The three ``~HS`` strings: paper out and pause in string 1, head up in string 2."""
        strings = (
            f"030,{int(self.paper_out)},{int(self.paused)},1218,000,0,0,0,000,0,0,0",
            f"000,0,{int(self.head_open)},0,0,2,6,0,00000000,1,000",
            "1234,0",
        )
        return b"".join(b"\x02" + s.encode("ascii") + b"\x03\r\n" for s in strings)

    def handle(self, connection: socket.socket) -> None:
        decoder = codecs.getincrementaldecoder("utf-8")("replace")
        pending = ""
        while chunk := connection.recv(4096):
            pending = self._take(pending + decoder.decode(chunk), connection)

    def _take(self, text: str, connection: socket.socket) -> str:
        """Answer the status requests and keep the complete documents in ``text``; returns the rest."""
        while (at := text.find("~HS")) >= 0:
            connection.sendall(self.host_status())
            text = text[:at] + text[at + 3 :]
        while (start := text.find("^XA")) >= 0 and (end := text.find("^XZ", start + 3)) >= 0:
            with self._received:
                self._documents.append(text[start : end + 3])
                self._received.notify_all()
            text = text[end + 3 :]
        start = text.find("^XA")
        # Between documents only the last two characters can start a command cut by the chunking.
        return text[start:] if start >= 0 else text[-2:]

    def _matching(self, serial: str | None) -> list[str]:
        if serial is None:
            return list(self._documents)
        return [doc for doc in self._documents if any(m.strip() == serial for m in _UNIT.findall(doc))]

    def labels(self, serial: str | None = None) -> list[str]:
        """The documents received so far: all, or those with ``^FX unit <serial>``."""
        with self._received:
            return self._matching(serial)

    def wait_labels(self, count: int, serial: str | None = None, timeout_s: float = 5.0) -> list[str]:
        """The documents once at least ``count`` of them have arrived (or the timeout passed)."""
        with self._received:
            self._received.wait_for(lambda: len(self._matching(serial)) >= count, timeout_s)
            return self._matching(serial)
