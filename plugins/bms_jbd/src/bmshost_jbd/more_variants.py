"""The BLE, CAN and UP16S variants of the jbd driver (appended by ``plugin.py``).

Import-light: only core types and lazy references.
"""

from __future__ import annotations

from bmshost.advertising import BleMatcher
from bmshost.capabilities import BASIC, Capability, caps
from bmshost.driver import Probe, VariantSpec
from bmshost_jbd import up16s_codec

# What the broadcast set carries (see docs/bms/jbd.md for the comparison with the seed's table).
CAN_CAPABILITIES = caps(
    BASIC,
    Capability.CAPACITY_INSTALLED,
    Capability.MIN_MAX_CELL_VOLTAGE,  # 0x373: Sample.cell_voltage_min/max
    Capability.MIN_MAX_TEMPERATURE,
    Capability.RAISE_ALARMS,  # 0x35A: the table says No, but the frame carries alarms/warnings
    Capability.CHARGE_CYCLE_HISTORY,
    Capability.BMS_CURRENT_LIMITS,
    Capability.SOH,
)

UP16S_CAPABILITIES = caps(
    BASIC,
    Capability.MOSFET_TEMPERATURE,
    Capability.CAPACITY_INSTALLED,
    Capability.CAPACITY_AVAILABLE,
    Capability.CAPACITY_CONSUMED,
    Capability.MIN_MAX_CELL_VOLTAGE,
    Capability.MIN_MAX_TEMPERATURE,
    Capability.BALANCING_STATUS,
    Capability.ALLOW_TO_CHARGE_STATE,
    Capability.ALLOW_TO_DISCHARGE_STATE,
    Capability.SINGLE_CELL_DETAILS,
    Capability.RAISE_ALARMS,
    Capability.DAISY_CHAIN,
    Capability.CHARGE_CYCLE_HISTORY,
    Capability.BMS_CURRENT_LIMITS,
    Capability.SOC_RESET,
    Capability.SOH,
)

# GATT characteristics: ff01/ff02, or fff1/fff2 on the DH04 board (the link takes what exists).
BLE_LINK_PARAMS = {"notify_uuid": "ff01,fff1", "write_uuid": "ff02,fff2", "write_response": False}

CAN_FILTERS = (
    {"can_id": 0x340, "can_mask": 0x7C0, "extended": False},  # 0x340..0x37F
    {"can_id": 0x380, "can_mask": 0x7F0, "extended": False},  # 0x380..0x38F
)


# Advertisement data that identifies JBD boards (names used by JBD, Xiaoxiang, Overkill...; the
# A4:C1:37/38 address blocks with the ff00 service).
BLE_MATCHERS = (
    BleMatcher(local_name_prefix="JBD-"),
    BleMatcher(local_name_prefix="SX1"),
    BleMatcher(local_name_prefix="DWF"),
    BleMatcher(local_name_prefix="SBL-"),
    BleMatcher(service_uuid="ff00", oui="A4:C1:37"),
    BleMatcher(service_uuid="ff00", oui="A4:C1:38"),
)


def variants() -> tuple[VariantSpec, ...]:
    # BLE speaks the serial frames, so it can do exactly what the serial variant does.
    from bmshost_jbd.plugin import SERIAL_CAPABILITIES

    return (
        VariantSpec(
            name="ble",
            transports=("stream",),
            capabilities=SERIAL_CAPABILITIES,
            session="bmshost_jbd.ble:JbdBleSession",
            simulator="bmshost_jbd.ble:JbdBleSimulator",
            decoder="bmshost_jbd.codec:decode",
            link_params=dict(BLE_LINK_PARAMS),
            ble_matchers=BLE_MATCHERS,
            description="JBD general protocol over Bluetooth LE (GATT ff00: ff01/ff02, DH04 fff1/fff2)",
        ),
        VariantSpec(
            name="can",
            transports=("can",),
            capabilities=CAN_CAPABILITIES,
            session="bmshost_jbd.can_session:JbdCanSession",
            simulator="bmshost_jbd.can_sim:JbdCanSimulator",
            decoder="bmshost_jbd.can_codec:decode",
            link_params={"can_filters": [dict(f) for f in CAN_FILTERS]},
            description="JBD CAN, BMS protocol 'Victron' (broadcast 0x351..0x382; bank aggregate)",
        ),
        VariantSpec(
            name="up16s",
            transports=("stream",),
            capabilities=UP16S_CAPABILITIES,
            session="bmshost_jbd.up16s_session:Up16sSession",
            simulator="bmshost_jbd.up16s_sim:Up16sSimulator",
            decoder="bmshost_jbd.up16s_codec:decode",
            recognise=up16s_codec.recognise,
            link_params={"baud": 9600, "parity": "N", "stopbits": 1},
            probes=(
                Probe(
                    request=up16s_codec.read_request(1, up16s_codec.PACK_STATUS),
                    link_params={"baud": 9600},
                    address=1,
                    timeout=0.5,
                ),
            ),
            description="JBD UP-series (UP16S) 'modbus' protocol, daisy chain on RS485 (9600 8N1)",
        ),
    )
