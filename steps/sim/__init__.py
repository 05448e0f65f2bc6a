"""Simulated hardware: ``floorflow run --sim`` runs a recipe end to end with no unit on the bench.

``SimLine(flow, config)`` is the ``sim`` entry of the ``floorflow.lines`` group: the hardware Line
(``steps.hardware``) wired to simulators, so every step runs the code it runs on the line. Behind
each slot's USB port (a pyusb backend, ``usbsim``/``usbfirmware``) and serial console (a
pseudo-terminal with firmware on the other end, ``firmware``) sits one ``SimDevice`` per unit
serial, the model of the unit, which keeps its state from stage to stage and attempt to attempt.
The RF tester and fixture meter are SCPI servers on loopback (``instruments``), the label printer a
raw TCP printer (``printer``); the image files are written with seeded contents. Values are seeded
per serial and stage, so runs repeat; a healthy
simulated unit passes every example recipe well inside its limits. The simulated product follows
the recipe: OS images report the first version its ready-to-ship checks allow, the RF settings
hold the region and target power its ``rf.verify_config`` stages expect.

The config (a YAML mapping given with ``--sim-config FILE``; empty when absent) injects faults,
overrides defaults and says what state units arrive in; docs/sim.md describes every key. Every key
is optional; unknown keys, stages, images, states or identity kinds are a ValueError with a "did
you mean"::

    arrivals: plug              # how units arrive: scan, plug (at --sim-every's rate) or list
    units:                      # per unit serial
      SN1:
        missing: true           # an empty slot: nothing on USB, a silent console (ERROR)
        fail: {rf_cal: 2}       # the first 2 attempts of stage rf_cal FAIL (StepFailed)
        hang: {functional: 5.0} # each attempt of stage functional first stays silent 5 s
                                # (stops early, with StationError, when the attempt is cancelled)
        measurements:           # STAGE.NAME: value the unit/instruments report for that
          rf_cal.tx_power_dbm: 30.0           #   measurement in that stage (self-tests
          functional.gpio_loopback: fail      #   take pass/fail; call_connected false, ...)
        corrupt: [flash_golden] # storage written in these stages reads back a wrong hash
        lifecycle: Module1Complete          # the state the unit arrives in
        identities: {imei: "356938035643809"}   # identities it arrives with (write-once)
        wifi: [factory-ap]      # Wi-Fi networks configured on it
        capabilities: [appdevelopment]      # capability certificates on it
        starts_with: {os: os, images: [app]}  # on its storage when it arrives (default: nothing)
        boot_banner: "Unit {serial} up"     # what it prints when it boots, instead of the line's
    unsigned: [factory_test]    # images that are not production-signed: sideload refuses them
    os_versions: {golden: "10.0.1"}         # OS version an image reports when booted
    offline: [rf_tester]        # station resources that raise StationError when used
    image_kib: 256              # size of each simulated image file
    usb_mb_s: 40                # simulated USB transfer rate (0: no delay)
    rf_noise: 1.0               # scale of the radio tester's measurement noise
    rf_failure_rate: 0.0        # fraction of RF measurements the tester fails (an instrument error)
    boot_s: 0.0                 # seconds a simulated boot takes (bounded by the step's timeout)
    boot_banner: "MyProduct OS {version} ready"   # printed on each boot, before "boot complete"
    allocator:                  # identity allocation
      tac: "35693803"           # 8-digit Type Allocation Code of the IMEIs
      imei_first: 0             # range of the IMEIs' 6-digit serial numbers
      imei_last: 999999
      oui: "02:46:46"           # MAC block (locally administered by default)
      serial_format: "SIM{n:08d}"
    rf: {region: EU, target_power_dbm: 16.0}    # RF settings programmed into every unit
    state_dir: sim-state        # keep units and issued identities in files between runs

"""

from __future__ import annotations

from steps.sim.device import SimDevice
from steps.sim.line import SimLine

__all__ = ["SimDevice", "SimLine"]
