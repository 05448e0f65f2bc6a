"""The station's real adapters: USB (pyusb), UART (pyserial), SCPI instruments (pyvisa), label printer.

A package rather than a module, because every top-level module of ``steps`` is a step type (the
packaging test holds one entry point per module). The wire protocols are in docs/hardware.md.
"""

from __future__ import annotations

from steps.hardware.line import HardwareLine

__all__ = ["HardwareLine"]
