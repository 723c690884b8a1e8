"""Hook implementations of bmshost_daly: the ``daly`` driver and its four variants.

Import-light on purpose: codecs, sessions and simulators are lazy references, so listing plugins
or running another driver never imports them.
"""

from __future__ import annotations

from bmshost.advertising import BleMatcher
from bmshost.capabilities import BASIC, Capability, caps
from bmshost.driver import DriverSpec, Probe, VariantSpec
from bmshost.hookspecs import hookimpl
from bmshost.registry import DriverRegistry
from bmshost_daly.options import DalyOptions

C = Capability
_COMMON = caps(
    BASIC,
    C.MIN_MAX_CELL_VOLTAGE,
    C.MIN_MAX_TEMPERATURE,
    C.ALLOW_TO_CHARGE_STATE,
    C.ALLOW_TO_DISCHARGE_STATE,
    C.SINGLE_CELL_DETAILS,
    C.CHARGE_CYCLE_HISTORY,
    C.CAPACITY_AVAILABLE,
)
# A5 (serial, BLE A5) and CAN read the rated capacity (0x50) and 0x98 failure bits. No MOSFET
# sensor, and the 0x97 balance bits have a disputed order (spec §7.9), so no balancing status.
_A5 = caps(_COMMON, C.CAPACITY_INSTALLED, C.CAPACITY_CONSUMED, C.RAISE_ALARMS)
SERIAL_CAPS = caps(_A5, C.DAISY_CHAIN, C.SOC_RESET, C.DISABLE_CHARGING, C.DISABLE_DISCHARGING)
BLE_A5_CAPS = caps(_A5, C.SOC_RESET, C.DISABLE_CHARGING, C.DISABLE_DISCHARGING)
CAN_CAPS = caps(_A5, C.DAISY_CHAIN, C.SOC_RESET)
# D2: per-cell balancing bits, balancer state, MOSFET sensor (when fitted); alarm words have no
# documented bit map and no write registers are documented.
BLE_D2_CAPS = caps(_COMMON, C.MOSFET_TEMPERATURE, C.BALANCING_STATUS, C.ALLOW_TO_BALANCE_STATE)

# D2 modules: "DL-<mac>" names, or one of the manufacturer ids they advertise
D2_MATCHERS = (
    BleMatcher(local_name_prefix="DL-"),
    *(BleMatcher(manufacturer_id=m) for m in (0x0102, 0x0104, 0x0302, 0x0303, 0x0402)),
)

_GATT_FFF0 = {
    "service_uuid": "0000fff0-0000-1000-8000-00805f9b34fb",
    "notify_uuid": "0000fff1-0000-1000-8000-00805f9b34fb",
    "write_uuid": "0000fff2-0000-1000-8000-00805f9b34fb",
    "write_response": False,
}

# Read-only 0x94 (status) requests for host 0x40 and 0x80; a reply with cells > 0 is Daly.
_PROBE_40 = bytes.fromhex("a5409408000000000000000081")
_PROBE_80 = bytes.fromhex("a58094080000000000000000c1")


def _sum8_ok(frame: bytes) -> bool:
    return (
        len(frame) == 13
        and frame[0] == 0xA5
        and frame[3] == 0x08
        and sum(frame[:12]) & 0xFF == frame[12]
    )


def recognise_a5(frame: bytes) -> bool:
    """A 13-byte ``A5 .. .. 08`` frame with a valid SUM8."""
    return _sum8_ok(frame)


def recognise_d2(frame: bytes) -> bool:
    """A ``D2 03`` Modbus reply whose length and CRC fit."""
    if len(frame) < 5 or frame[0] != 0xD2 or frame[1] not in (0x03, 0x83):
        return False
    from bmshost_daly.modbus import recognise  # only when `bmshost decode` asks

    return recognise(frame)


def probe_accepts(reply: bytes) -> bool:
    return _sum8_ok(reply) and reply[2] == 0x94 and reply[4] > 0


@hookimpl
def bmshost_register_drivers(registry: DriverRegistry) -> None:
    registry.add(
        DriverSpec(
            name="daly",
            description="Daly smart BMS: UART/RS485 (A5), CAN, BLE (Modbus D2 or A5 frames)",
            options=DalyOptions,
            variants=(
                VariantSpec(
                    name="serial",
                    transports=("stream",),
                    capabilities=SERIAL_CAPS,
                    session="bmshost_daly.session_a5:DalyA5Session",
                    simulator="bmshost_daly.sim_a5:DalyA5Simulator",
                    decoder="bmshost_daly.a5:decode",
                    recognise=recognise_a5,
                    link_params={"baud": 9600},
                    probes=(
                        Probe(
                            request=_PROBE_40,
                            link_params={"baud": 9600},
                            timeout=0.5,
                            accepts=probe_accepts,
                        ),
                        Probe(
                            request=_PROBE_80,
                            link_params={"baud": 9600},
                            timeout=0.5,
                            accepts=probe_accepts,
                        ),
                    ),
                    description="UART/RS485 A5 protocol, 9600 8N1; address = board number 1..16",
                ),
                VariantSpec(
                    name="can",
                    transports=("can",),
                    capabilities=CAN_CAPS,
                    session="bmshost_daly.session_can:DalyCanSession",
                    simulator="bmshost_daly.sim_can:DalyCanSimulator",
                    decoder="bmshost_daly.can_codec:decode",
                    link_params={"bitrate": 250000},
                    description="CAN 250 kbit/s, 29-bit ids 18<id><board>40; address = board 1..16",
                ),
                VariantSpec(
                    name="ble",
                    transports=("stream",),
                    capabilities=BLE_D2_CAPS,
                    session="bmshost_daly.session_d2:DalyD2Session",
                    simulator="bmshost_daly.sim_d2:DalyD2Simulator",
                    decoder="bmshost_daly.modbus:decode",
                    recognise=recognise_d2,
                    link_params=dict(_GATT_FFF0),
                    ble_matchers=D2_MATCHERS,
                    description="BLE Modbus-like protocol, device id D2 (current Daly BT modules)",
                ),
                VariantSpec(
                    name="ble_a5",
                    transports=("stream",),
                    capabilities=BLE_A5_CAPS,
                    session="bmshost_daly.session_a5:DalyA5Session",
                    simulator="bmshost_daly.sim_a5:DalyA5Simulator",
                    decoder="bmshost_daly.a5:decode",
                    link_params=dict(_GATT_FFF0),
                    # the same "DL-" names as the D2 modules: a scan lists both variants
                    ble_matchers=(BleMatcher(local_name_prefix="DL-"),),
                    description="BLE carrying A5 frames (older DL- dongles); host 0x40, then 0x80",
                ),
            ),
        )
    )
