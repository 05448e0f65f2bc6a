"""The SCPI adapters against the simulated instruments: real sockets on loopback, through pyvisa.

Each test cables simulated units to the switch ports of a ``SimRfTesterServer`` or
``SimMeterServer`` and drives them with the host adapters ``ScpiRfTester`` and ``ScpiMeter``.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from engine.flow import Flow, Stage
from engine.outcome import StationError, StepFailed
from steps.common import CallResult
from steps.hardware.instruments import ScpiMeter, ScpiRfTester
from steps.sim.config import SimConfig, UnitFaults
from steps.sim.device import SimDevice
from steps.sim.instruments import SimMeterServer, SimRfTesterServer
from steps.sim.model import line_model

STAGE = "rf"
_STAGES = {STAGE: Stage(STAGE, "manual.checklist")}
MODEL = line_model(
    Flow("mini", 1, _STAGES, tuple(_STAGES), lifecycle=("Blank", "Module1Complete", "DeviceComplete")), SimConfig()
)


def sim_unit(serial: str, band: str | None = None, channel: int = 0, **measurements: Any) -> SimDevice:
    """A simulated unit in stage ``rf``, transmitting on ``band`` when given, with reading overrides."""
    faults = UnitFaults(measurements={(STAGE, name): value for name, value in measurements.items()})
    device = SimDevice(serial, MODEL, faults)
    device.begin(STAGE, threading.Event())
    if band is not None:
        device.rf_start(band, channel)
    return device


@dataclass
class Cabled:
    """The station's handle of a unit: its switch ports and its RSSI report over the console."""

    device: SimDevice
    rf_port: int = 1
    meter_port: int = 1
    input_seen: float | None = None

    def rssi(self) -> float:
        self.input_seen = self.device.rx_input_dbm
        return self.device.rssi()


@pytest.fixture
def rack() -> Iterator[dict[int, SimDevice]]:
    """Switch port -> the unit cabled to it; filled by each test."""
    yield {}


@pytest.fixture
def tester_server(rack: dict[int, SimDevice]) -> Iterator[SimRfTesterServer]:
    server = SimRfTesterServer(rack.get, noise=0.0)
    yield server
    server.close()


@pytest.fixture
def tester(tester_server: SimRfTesterServer) -> Iterator[ScpiRfTester]:
    host = ScpiRfTester(tester_server.resource, timeout_s=2.0)
    yield host
    host.close()


def test_tx_is_measured_on_the_selected_port(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """Each port's measurement is that unit's own emission (noise 0: exactly, rounded)."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 6)
    rack[2] = sim_unit("SN-B", "bluetooth", 10)
    for port, band, channel in ((2, "bluetooth", 10), (1, "wifi-2g4", 6)):
        _, _, emission = rack[port].emission()
        result = tester.measure_tx(Cabled(rack[port], rf_port=port), band, channel)
        assert result.power_dbm == round(emission.power_dbm, 2)
        assert result.evm_percent == round(emission.evm_percent, 2)
        assert result.freq_error_ppm == round(emission.freq_error_ppm, 3)


def test_tx_noise_stays_within_the_testers_spread(rack: dict[int, SimDevice]) -> None:
    """With the tester's noise on, readings differ from the emission by no more than a few sigma."""
    unit = rack[1] = sim_unit("SN-A", "wifi-5g", 36)
    _, _, emission = unit.emission()
    with SimRfTesterServer(rack.get, noise=1.0) as server:
        host = ScpiRfTester(server.resource)
        results = [host.measure_tx(Cabled(unit), "wifi-5g", 36) for _ in range(5)]
        host.close()
    assert all(abs(r.power_dbm - emission.power_dbm) < 0.5 for r in results)
    assert all(abs(r.freq_error_ppm - emission.freq_error_ppm) < 0.5 for r in results)
    assert len({r.power_dbm for r in results}) > 1, "the noise should vary between measurements"


def test_a_reading_override_is_what_the_host_sees(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """A configured measurement of the unit travels the wire unchanged."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 1, tx_power_dbm=30.0)
    assert tester.measure_tx(Cabled(rack[1]), "wifi-2g4", 1).power_dbm == 30.0


def test_an_unparseable_reply_is_shown(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """A reply that is not three numbers is a StationError quoting it."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 1, tx_evm_percent="n/a")
    with pytest.raises(StationError, match=r"answered 'MEAS:TX\?' with '.*,n/a,.*', not 3"):
        tester.measure_tx(Cabled(rack[1]), "wifi-2g4", 1)


@pytest.mark.parametrize(("band", "channel"), [("wifi-2g4", 11), ("bluetooth", 6)])
def test_a_band_or_channel_mismatch_is_an_error(
    rack: dict[int, SimDevice], tester: ScpiRfTester, band: str, channel: int
) -> None:
    """The tester set to another band or channel than the unit's reports the conflict."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 6)
    with pytest.raises(StationError, match=rf"Settings conflict;the tester is set to {band} channel {channel}, "):
        tester.measure_tx(Cabled(rack[1]), band, channel)


def test_an_empty_port_reports_the_instruments_error(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """Nothing on the selected port: the error carries the instrument's text and code."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 6)
    with pytest.raises(StationError, match=r"could not measure 'MEAS:TX\?': Execution error;no signal on port 3 \("):
        tester.measure_tx(Cabled(rack[1], rf_port=3), "wifi-2g4", 6)


def test_a_silent_unit_reports_what_the_tester_sees(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """A unit that is not in RF test mode: the unit's own explanation comes back through SYST:ERR?."""
    rack[1] = sim_unit("SN-A")
    with pytest.raises(StationError, match="unit SN-A is not transmitting"):
        tester.measure_tx(Cabled(rack[1]), "wifi-2g4", 6)


def test_stale_data_is_an_error(rack: dict[int, SimDevice]) -> None:
    """failure_rate 1.0: every measurement fails with the instrument's 'Data corrupt or stale'."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 6)
    with SimRfTesterServer(rack.get, failure_rate=1.0) as server:
        host = ScpiRfTester(server.resource)
        with pytest.raises(StationError, match=r"Data corrupt or stale \(error -230\)"):
            host.measure_tx(Cabled(rack[1]), "wifi-2g4", 6)
        host.close()


def test_a_closed_server_is_named(rack: dict[int, SimDevice]) -> None:
    """No instrument listening: StationError naming the tester and its resource."""
    server = SimRfTesterServer(rack.get)
    server.close()
    server.close()  # harmless twice
    host = ScpiRfTester(server.resource, timeout_s=1.0)
    with pytest.raises(StationError, match=rf"the radio tester at {server.resource} does not answer"):
        host.identify()


def test_the_session_reconnects_after_a_dropped_link(
    rack: dict[int, SimDevice], tester_server: SimRfTesterServer
) -> None:
    """The instrument drops the connection: one StationError, then the next call opens a new session."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 6)
    host = ScpiRfTester(tester_server.resource, timeout_s=1.0)
    assert host.identify() == "floorflow,SIM-RFT,0,1.0"
    tester_server.disconnect()
    with pytest.raises(StationError, match=tester_server.resource):
        host.measure_tx(Cabled(rack[1]), "wifi-2g4", 6)
    assert host.measure_tx(Cabled(rack[1]), "wifi-2g4", 6).power_dbm > 0
    host.close()


def test_rssi_generates_the_reference_level_and_switches_it_off(
    rack: dict[int, SimDevice], tester: ScpiRfTester
) -> None:
    """The unit sees the band's reference level while it reports, and nothing afterwards."""
    unit = Cabled(sim_unit("SN-A", "bluetooth", 20), rf_port=2)
    rack[2] = unit.device
    level, reported = tester.measure_rssi(unit, "bluetooth", 20)
    assert level == unit.input_seen == -70.0
    assert abs(reported - level) <= 3.0
    assert unit.device.rx_input_dbm is None


def test_rssi_switches_the_generator_off_when_the_unit_fails(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """The unit's own failure propagates (FAIL), and the generator is off all the same."""
    unit = Cabled(sim_unit("SN-A", "wifi-2g4", 6))
    rack[1] = unit.device

    def refuses() -> float:
        unit.input_seen = unit.device.rx_input_dbm
        raise StepFailed("the unit reports nothing")

    unit.rssi = refuses  # type: ignore[method-assign]
    with pytest.raises(StepFailed, match="reports nothing"):
        tester.measure_rssi(unit, "wifi-2g4", 6)
    assert unit.input_seen == -60.0 and unit.device.rx_input_dbm is None


def test_rssi_on_a_cellular_band_is_refused(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """A cellular band has no reference level: it is tested with a call."""
    rack[1] = sim_unit("SN-A", "lte-b3", 1300)
    with pytest.raises(StationError, match="tested with a call"):
        tester.measure_rssi(Cabled(rack[1]), "lte-b3", 1300)


def test_a_call_connects_and_measures_bler(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """A healthy cellular unit connects, and the BLER is the unit's own (noise 0)."""
    rack[1] = sim_unit("SN-A", "lte-b3", 1300)
    result = tester.call(Cabled(rack[1]), "lte-b3", 1300)
    assert result.connected and result.bler_percent is not None and 0.0 <= result.bler_percent <= 1.0


def test_a_call_that_does_not_connect(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """A unit whose call fails: not connected, and no BLER."""
    rack[1] = sim_unit("SN-A", "lte-b20", 6300, call_connected=False)
    assert tester.call(Cabled(rack[1]), "lte-b20", 6300) == CallResult(False, None)


def test_a_call_on_wifi_is_an_error(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """The call box sets up calls on cellular bands only."""
    rack[1] = sim_unit("SN-A", "wifi-2g4", 6)
    with pytest.raises(StationError, match="cannot set up a call on wifi-2g4"):
        tester.call(Cabled(rack[1]), "wifi-2g4", 6)


def test_slots_share_the_tester_safely(rack: dict[int, SimDevice], tester: ScpiRfTester) -> None:
    """Threads measuring different ports at once each get their own unit's reading."""
    for port in range(1, 5):
        rack[port] = sim_unit(f"SN-{port}", "wifi-2g4", port)
    expected = {port: round(rack[port].emission()[2].power_dbm, 2) for port in rack}
    seen: dict[int, list[float]] = {port: [] for port in rack}
    errors: list[BaseException] = []

    def measure(port: int) -> None:
        try:
            for _ in range(10):
                seen[port].append(tester.measure_tx(Cabled(rack[port], rf_port=port), "wifi-2g4", port).power_dbm)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=measure, args=(port,)) for port in rack]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen == {port: [expected[port]] * 10 for port in rack}


def test_scpi_error_queue_on_the_wire(rack: dict[int, SimDevice], tester_server: SimRfTesterServer) -> None:
    """Unknown headers queue -113; SYST:ERR? pops the queue in order, then reports no error."""
    with socket.create_connection(("127.0.0.1", tester_server.port), timeout=2.0) as link:
        replies = link.makefile("r", encoding="utf-8")
        link.sendall(b"FOO:BAR 1\nCONF:BAND nowhere,1\nSYST:ERR?\nSYST:ERR?\nSYST:ERR?\n*IDN?\n")
        lines = [replies.readline().strip() for _ in range(4)]
    assert lines[0] == '-113,"Undefined header;FOO:BAR"'
    assert lines[1].startswith("-224,\"Illegal parameter value;the radio tester has no profile for band 'nowhere'")
    assert lines[2:] == ['0,"No error"', "floorflow,SIM-RFT,0,1.0"]


# -- the fixture meter -----------------------------------------------------------------------------


def test_meter_reads_milliamperes(rack: dict[int, SimDevice]) -> None:
    """The meter answers amperes; the adapter reports the quantity in mA, override included."""
    rack[1] = sim_unit("SN-A")
    rack[2] = sim_unit("SN-B", standby_current_ma=4.25)
    with SimMeterServer(rack.get) as server:
        meter = ScpiMeter(server.resource)
        healthy = meter.read(Cabled(rack[1], meter_port=1), "standby_current_ma")
        overridden = meter.read(Cabled(rack[2], meter_port=2), "standby_current_ma")
        meter.close()
    assert 2.5 < healthy < 6.0
    assert overridden == 4.25


def test_meter_empty_port_and_stale_data(rack: dict[int, SimDevice]) -> None:
    """The meter's NaN readings carry its error text too."""
    with SimMeterServer(rack.get) as server, SimMeterServer(rack.get, failure_rate=1.0) as failing:
        meter, stale = ScpiMeter(server.resource), ScpiMeter(failing.resource)
        rack[1] = sim_unit("SN-A")
        with pytest.raises(StationError, match=r"fixture meter at .*;nothing is connected to port 2"):
            meter.read(Cabled(rack[1], meter_port=2), "standby_current_ma")
        with pytest.raises(StationError, match="Data corrupt or stale"):
            stale.read(Cabled(rack[1]), "standby_current_ma")
        meter.close()
        stale.close()


def test_meter_unknown_quantity_suggests_one() -> None:
    """A misspelt quantity is refused before any I/O, with a did-you-mean."""
    meter = ScpiMeter("TCPIP0::127.0.0.1::1::SOCKET")
    with pytest.raises(StationError, match=r"cannot measure 'standby_curent_ma' \(did you mean 'standby_current_ma'"):
        meter.read(Cabled(sim_unit("SN-A")), "standby_curent_ma")
