"""Hook implementations of bmshost_seplos: the ``seplos`` driver and its variants.

Import-light on purpose: codecs, sessions and simulators are lazy references.
"""

from __future__ import annotations

from bmshost.advertising import BleMatcher
from bmshost.capabilities import BASIC, Capability, caps
from bmshost.driver import DriverSpec, Probe, VariantSpec
from bmshost.hookspecs import hookimpl
from bmshost.registry import DriverRegistry
from bmshost_seplos.options import SeplosOptions

C = Capability
_COMMON = caps(
    BASIC,
    C.MOSFET_TEMPERATURE,
    C.CAPACITY_INSTALLED,
    C.CAPACITY_AVAILABLE,
    C.CAPACITY_CONSUMED,
    C.MIN_MAX_CELL_VOLTAGE,
    C.MIN_MAX_TEMPERATURE,
    C.ALLOW_TO_CHARGE_STATE,
    C.ALLOW_TO_DISCHARGE_STATE,
    C.SINGLE_CELL_DETAILS,
    C.CHARGE_CYCLE_HISTORY,
    C.SOH,
    C.HEATING,
)
# v2 ASCII: 0x44 carries live events, switch state and equilibrium bits; packs share RS485 by
# DIP address. The 6th sensor is the power (MOSFET) sensor. No write commands are documented.
V2_CAPS = caps(_COMMON, C.BALANCING_STATUS, C.RAISE_ALARMS, C.DAISY_CHAIN)
# v2 BLE: telemetry plus the 0x62 switch byte; the 0x62 event list has no documented layout.
BLE_CAPS = _COMMON
# v3: PIC balancing/event coils, CCL/DCL in PIA, Modbus ids 0..15 on one bus.
V3_CAPS = caps(_COMMON, C.BALANCING_STATUS, C.RAISE_ALARMS, C.DAISY_CHAIN, C.BMS_CURRENT_LIMITS)
V3_BLE_CAPS = V3_CAPS - {C.DAISY_CHAIN}

_PROBE_V2 = b"~20004642E00200FD37\r"  # 0x42 telemetry, pack 0
_PROBE_V3 = bytes.fromhex("00041700000a7468")  # VIA factory name, Modbus id 0


def _v2_accepts(reply: bytes) -> bool:
    return reply.startswith(b"~") and reply[7:9] == b"00" and reply.endswith(b"\r")


def _v3_accepts(reply: bytes) -> bool:
    return b"XZH-ElecTech" in reply


def recognise_v2(frame: bytes) -> bool:
    if not (frame[:1] == b"~" and frame[-1:] == b"\r"):
        return False
    from bmshost_seplos.ascii_v2 import recognise  # only when `bmshost decode` asks

    return recognise(frame)


def recognise_ble(frame: bytes) -> bool:
    if not (frame[:1] == b"\x7e" and frame[-1:] == b"\x0d" and frame[1:2] == b"\x14"):
        return False
    from bmshost_seplos.binary_v2 import recognise

    return recognise(frame)


def recognise_v3(frame: bytes) -> bool:
    if len(frame) < 5 or frame[1] & 0x7F not in (0x01, 0x04):
        return False
    from bmshost_seplos.modbus_v3 import recognise

    return recognise(frame)


_GATT_FF00 = {
    "service_uuid": "0000ff00-0000-1000-8000-00805f9b34fb",
    "notify_uuid": "0000ff01-0000-1000-8000-00805f9b34fb",
    "write_uuid": "0000ff02-0000-1000-8000-00805f9b34fb",
    "write_response": False,
}
_GATT_FFF0 = {
    "service_uuid": "0000fff0-0000-1000-8000-00805f9b34fb",
    "notify_uuid": "0000fff1-0000-1000-8000-00805f9b34fb",
    "write_uuid": "0000fff2-0000-1000-8000-00805f9b34fb",
    "write_response": False,
}


@hookimpl
def bmshost_register_drivers(registry: DriverRegistry) -> None:
    registry.add(
        DriverSpec(
            name="seplos",
            description="Seplos BMS: v2 ASCII (RS485/RS232), v2 BLE binary, v3 Modbus RTU",
            options=SeplosOptions,
            variants=(
                VariantSpec(
                    name="serial",
                    transports=("stream",),
                    capabilities=V2_CAPS,
                    session="bmshost_seplos.session_v2:SeplosV2Session",
                    simulator="bmshost_seplos.sim_v2:SeplosV2Simulator",
                    decoder="bmshost_seplos.ascii_v2:decode",
                    recognise=recognise_v2,
                    link_params={"baud": 19200},
                    probes=(
                        Probe(
                            request=_PROBE_V2,
                            link_params={"baud": 19200},
                            address=0,
                            timeout=1.0,
                            accepts=_v2_accepts,
                        ),
                    ),
                    description="v2 ASCII protocol (16E boards), 19200 8N1; address = DIP 0..15",
                ),
                VariantSpec(
                    name="v3",
                    transports=("stream",),
                    capabilities=V3_CAPS,
                    session="bmshost_seplos.session_v3:SeplosV3Session",
                    simulator="bmshost_seplos.sim_v3:SeplosV3Simulator",
                    decoder="bmshost_seplos.modbus_v3:decode",
                    recognise=recognise_v3,
                    link_params={"baud": 19200},
                    probes=(
                        Probe(
                            request=_PROBE_V3,
                            link_params={"baud": 19200},
                            address=0,
                            timeout=0.5,
                            accepts=_v3_accepts,
                        ),
                    ),
                    description="v3 (XZH) Modbus RTU, 19200 8N1; address = Modbus id 0..15",
                ),
                VariantSpec(
                    name="ble",
                    transports=("stream",),
                    capabilities=BLE_CAPS,
                    session="bmshost_seplos.session_ble:SeplosBleSession",
                    simulator="bmshost_seplos.sim_ble:SeplosBleSimulator",
                    decoder="bmshost_seplos.binary_v2:decode",
                    recognise=recognise_ble,
                    link_params=dict(_GATT_FF00),
                    ble_matchers=tuple(
                        BleMatcher(local_name_prefix=p) for p in ("BP0", "BP1", "BP2")
                    ),
                    description="v2 over BLE: binary 7E frames with CRC-16/XMODEM (BP0x names)",
                ),
                VariantSpec(
                    name="v3_ble",
                    transports=("stream",),
                    capabilities=V3_BLE_CAPS,
                    session="bmshost_seplos.session_v3:SeplosV3Session",
                    simulator="bmshost_seplos.sim_v3:SeplosV3Simulator",
                    decoder="bmshost_seplos.modbus_v3:decode",
                    link_params=dict(_GATT_FFF0),
                    description="v3 Modbus RTU carried over BLE (GATT fff0)",
                ),
            ),
        )
    )
