"""The UART console link (pyserial) against the simulated firmware, through real pseudo-terminals.

Every test opens a pty with ``SimConsole`` on the master side and a ``ConsoleLink`` on the slave, so
the bytes cross the kernel's tty layer exactly as they cross a USB-UART adapter.
"""

from __future__ import annotations

import os
import re
import threading
import time
from collections.abc import Iterator

import pytest

from engine.flow import Image
from engine.outcome import StationError, StepFailed
from steps.common import CommandRefused
from steps.hardware.console import ConsoleLink
from steps.sim.config import UnitFaults
from steps.sim.device import SimDevice
from steps.sim.firmware import SimConsole
from steps.sim.model import LineModel

MODEL = LineModel(
    lifecycle=("Blank", "Module1Complete", "DeviceComplete"),
    os_versions={"os": "7.1", "factory_test": "7.1"},
    image_types={"os": None, "factory_test": "test"},
    unsigned=frozenset(),
    rf_region="EU",
    rf_target_power_dbm=16.0,
    boot_s=0.0,
)
OS = Image("os", file="images/os", kind="recovery")
TEST_APP = Image("factory_test", file="images/ftest", type="test", temporary=True)
IMEI = "356938035643809"


@pytest.fixture
def console() -> Iterator[SimConsole]:
    console = SimConsole()
    yield console
    console.close()


@pytest.fixture
def link(console: SimConsole) -> Iterator[ConsoleLink]:
    link = ConsoleLink(console.port, timeout_s=1.0)
    yield link
    link.close()


def unit_in(console: SimConsole, faults: UnitFaults | None = None, *, booted: bool = True) -> SimDevice:
    """A unit in the console's slot; booted: its OS recovered and the factory test app installed."""
    device = SimDevice("SN1", MODEL, faults)
    console.attach(device)
    if booted:
        device.recover(OS, 5, threading.Event())  # prints a banner nobody reads: stale input for the host
        device.sideload(TEST_APP)
    return device


def host_gets_instead(console: SimConsole, data: bytes) -> threading.Thread:
    """Silence the firmware; once it hears the next command, the host gets ``data`` as the answer."""
    console.silent = True
    console.heard.clear()

    def answer() -> None:
        deadline = time.monotonic() + 5.0
        while not console.heard and time.monotonic() < deadline:
            time.sleep(0.005)
        console.emit(data)

    thread = threading.Thread(target=answer)
    thread.start()
    return thread


# -- commands --------------------------------------------------------------------------------------


def test_reads_report_the_units_state(console: SimConsole, link: ConsoleLink) -> None:
    """VERSION, ID, STATE, WIFI, IDENT and RF SETTINGS come back as the unit's own values."""
    device = unit_in(console)
    device.wifi.extend(["lab-ap", "spare-ap"])  # after the recovery, which clears them
    assert link.command("VERSION") == [("version", "7.1")]
    assert link.value("ID", "device_id") == device.device_id
    assert link.command("STATE") == [("lifecycle", "Blank")]
    assert link.command("WIFI") == [("network", "lab-ap"), ("network", "spare-ap")]
    assert link.command("IDENT imei") == [("imei", "none")]
    mac = device.rf_settings().mac
    assert link.command("RF SETTINGS") == [("region", "EU"), ("target_power_dbm", "16.0"), ("mac", mac)]
    assert console.heard[-1] == "RF SETTINGS"


def test_writes_change_the_unit(console: SimConsole, link: ConsoleLink) -> None:
    """IDENT, STATE, CUSTOMIZE and SENSORCAL with arguments change the unit and report what it holds."""
    device = unit_in(console)
    assert link.command(f"IDENT imei {IMEI}") == []
    assert link.command("IDENT imei") == [("imei", IMEI)] and device.identities["imei"] == IMEI
    assert link.command("CUSTOMIZE EU") == [("variant", "EU")]
    assert link.command("CUSTOMIZE EU acme") == [("variant", "EU/acme")] and device.customization == ("EU", "acme")
    [(name, value)] = link.command("SENSORCAL als")
    assert name == "als_gain" and device.sensor_cal["als"] == {"als_gain": float(value)}
    assert link.command("STATE Module1Complete") == [] and device.lifecycle == "Module1Complete"


def test_self_tests_pass_and_fail(console: SimConsole, link: ConsoleLink) -> None:
    """SELFTEST answers PASS, FAIL, or FAIL with the detail the unit printed."""
    faults = UnitFaults(measurements={("functional", "button"): "fail", ("functional", "display"): "dead pixel"})
    device = unit_in(console, faults)
    device.begin("functional", threading.Event())
    assert link.command("SELFTEST speaker") == [("speaker", "PASS")]
    assert link.value("SELFTEST button", "button") == "FAIL"
    assert link.value("SELFTEST display", "display") == "FAIL (dead pixel)"


def test_rf_test_mode(console: SimConsole, link: ConsoleLink) -> None:
    """RF START, TRIM, RSSI and STOP drive the unit's radio."""
    device = unit_in(console)
    device.begin("rf_cal", threading.Event())
    assert link.command("RF START wifi-2g4 6") == [] and device.rf_mode == ("wifi-2g4", 6)
    device.rx_input_dbm = -60.0
    assert -70.0 < float(link.value("RF RSSI", "rssi_dbm")) < -50.0
    assert link.command("RF TRIM wifi-2g4 6 0.5 -1.5 1") == [] and device.counts["write_trim"] == 1
    assert link.command("RF STOP") == [] and device.rf_mode is None


def test_value_wants_exactly_one_line_of_its_key(console: SimConsole, link: ConsoleLink) -> None:
    """value() of a key the reply lacks, or holds twice, is a StationError naming what came."""
    unit_in(console).wifi.extend(["a", "b"])
    with pytest.raises(StationError, match=r"has no 'revision' lines \(got: version\)"):
        link.value("VERSION", "revision")
    with pytest.raises(StationError, match="has 2 'network' lines"):
        link.value("WIFI", "network")


def test_refused_commands_are_command_refused(console: SimConsole, link: ConsoleLink) -> None:
    """A unit past Module1Complete refuses RF test mode, and its lifecycle never goes back: FAIL."""
    unit_in(console)
    link.command("STATE Module1Complete")
    with pytest.raises(CommandRefused, match="refuses RF test mode"):
        link.command("RF START wifi-2g4 6")
    with pytest.raises(CommandRefused, match="cannot go back to Blank"):
        link.command("STATE Blank")


def test_failed_commands_are_step_failed(console: SimConsole, link: ConsoleLink) -> None:
    """A unit that tries and fails (no test application, nothing to receive) answers ERR failed: FAIL."""
    unit_in(console, booted=False)
    with pytest.raises(StepFailed, match="no factory test application"):
        link.command("SELFTEST button")
    with pytest.raises(StepFailed, match="receives no signal"):
        link.command("RF RSSI")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("FROB", "unknown command 'FROB'"),
        ("VERSON", "did you mean 'VERSION'?"),
        ("VERSION now", "usage: VERSION"),
        ("RF START wifi-2g4 six", "channel must be an integer, not 'six'"),
        ("RF TRIM wifi-2g4 6 0.5 0 2", "persist must be 0 or 1"),
        ("SENSORCAL thermometer", "no stimulus for sensor 'thermometer'"),
    ],
)
def test_invalid_commands_are_station_errors(console: SimConsole, link: ConsoleLink, line: str, message: str) -> None:
    """A command the unit cannot understand is the station's fault: StationError with the unit's reason."""
    unit_in(console)
    with pytest.raises(StationError, match=re.escape(message)) as raised:
        link.command(line)
    assert str(raised.value).startswith(f"serial {console.port}: the unit rejected the command")


def test_stale_input_is_discarded_and_bare_newlines_are_lines(console: SimConsole, link: ConsoleLink) -> None:
    """Old output is dropped before a command, and a reply may end its lines in \\n alone."""
    unit_in(console)
    console.emit(b"stale: 1\r\nOK\r\n")
    assert link.command("VERSION") == [("version", "7.1")]
    thread = host_gets_instead(console, b"version: 1.0\nOK\n")
    assert link.command("VERSION") == [("version", "1.0")]
    thread.join()


# -- the boot banner -------------------------------------------------------------------------------


def test_wait_for_sees_the_boot_banner(console: SimConsole, link: ConsoleLink) -> None:
    """A boot in another thread prints the banner; wait_for returns it through 'boot complete'."""
    device = unit_in(console)
    device.reboot()
    boot = threading.Thread(target=device.wait_boot, args=(True, 5.0, threading.Event()))
    boot.start()
    banner = link.wait_for("boot complete", 2.0)
    boot.join()
    assert banner == device.console == "[sim] SN1 booting os 7.1\nboot complete\n"


def test_wait_for_a_unit_that_never_boots_is_step_failed(console: SimConsole, link: ConsoleLink) -> None:
    """No marker within the timeout is the unit's fault, and the message quotes what it printed."""
    unit_in(console, booted=False)
    console.emit(b"ROM loader v2\r\n")
    with pytest.raises(
        StepFailed, match=re.escape(f"serial {console.port}: no 'boot complete' within 0.3 s; seen: b'ROM")
    ):
        link.wait_for("boot complete", 0.3)


def test_wait_for_stops_when_cancelled(console: SimConsole, link: ConsoleLink) -> None:
    """A cancel (already set, or set while waiting) ends the wait as a StationError."""
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(StationError, match="waiting for 'boot complete' was cancelled"):
        link.wait_for("boot complete", 5.0, cancelled)
    cancelled.clear()
    timer = threading.Timer(0.05, cancelled.set)
    timer.start()
    with pytest.raises(StationError, match="cancelled"):
        link.wait_for("boot complete", 5.0, cancelled)
    timer.join()


# -- a broken link ---------------------------------------------------------------------------------


def test_partial_line_names_the_bytes_seen(console: SimConsole, link: ConsoleLink) -> None:
    """A reply cut off without its newline is a StationError quoting the bytes that did come."""
    unit_in(console)
    thread = host_gets_instead(console, b"version: 1.")
    with pytest.raises(
        StationError, match=re.escape("no complete reply to 'VERSION' within 0.5 s; bytes seen: b'version: 1.'")
    ):
        link.command("VERSION", timeout_s=0.5)
    thread.join()


@pytest.mark.parametrize("silence", ["silent firmware", "empty slot"])
def test_silence_is_no_answer(console: SimConsole, link: ConsoleLink, silence: str) -> None:
    """A unit that answers nothing, or a slot with no unit, is a StationError 'no answer'."""
    unit_in(console)
    if silence == "empty slot":
        console.attach(None)
    else:
        console.silent = True
    with pytest.raises(StationError, match=re.escape(f"serial {console.port}: no answer to SELFTEST within 0.2 s")):
        link.command("SELFTEST button", timeout_s=0.2)


def test_wrong_baud_rate_reads_garbage(console: SimConsole) -> None:
    """A host at 9600 baud reads garbage, reported as unintelligible; at 115200 the same unit answers."""
    device = unit_in(console)
    with ConsoleLink(console.port, baudrate=9600, timeout_s=1.0) as slow:
        with pytest.raises(
            StationError,
            match=r"unintelligible reply to 'VERSION' at 9600 baud \(wrong baud rate\?\); bytes seen: b'\\x",
        ):
            slow.command("VERSION")
        device.reboot()
        device.wait_boot(False, 5.0, threading.Event())
        with pytest.raises(StationError, match=r"unintelligible output at 9600 baud \(wrong baud rate\?\)"):
            slow.wait_for("boot complete", 0.3)
        slow.set_baudrate(115200)
        assert slow.command("VERSION") == [("version", "7.1")]


def test_garbage_without_a_newline_is_unintelligible(console: SimConsole, link: ConsoleLink) -> None:
    """Bytes that are no text, even with no line end, are reported as garbage rather than a partial line."""
    unit_in(console)
    thread = host_gets_instead(console, b"\xf8\x80\xfe\x00")
    with pytest.raises(StationError, match=r"unintelligible reply .*b'\\xf8\\x80\\xfe\\x00'"):
        link.command("VERSION", timeout_s=0.5)
    thread.join()


def test_a_port_that_does_not_exist_is_named() -> None:
    """Opening a port that is not there is a StationError naming it."""
    with pytest.raises(StationError, match="serial port /dev/ttyFLOORFLOW9 does not open"):
        ConsoleLink("/dev/ttyFLOORFLOW9")


def test_a_console_whose_other_end_is_gone_is_a_station_error(console: SimConsole, link: ConsoleLink) -> None:
    """When the pty's firmware side closes under an open link, the next command is a StationError."""
    unit_in(console)
    console.close()
    with pytest.raises(StationError, match=f"serial {console.port}"):
        link.command("VERSION", timeout_s=0.2)


def test_close_releases_threads_and_descriptors() -> None:
    """Closing the console and the link (twice each) stops the firmware's threads and frees every fd."""
    fds = len(os.listdir("/proc/self/fd"))
    console = SimConsole()
    link = ConsoleLink(console.port)
    device = unit_in(console, booted=False)
    assert device.on_console is not None
    for _ in range(2):
        link.close()
        console.close()
    assert device.on_console is None
    assert not [t for t in threading.enumerate() if console.port in t.name]
    assert len(os.listdir("/proc/self/fd")) == fds
