"""Hook implementations of bmshost-jk: the ``jk`` driver with its five wire variants.

Import-light on purpose: only core imports and lazy ``module:attr`` strings, so listing plugins
or starting a host that uses another family never imports the JK codecs.
"""

from __future__ import annotations

from bmshost.advertising import BleMatcher
from bmshost.capabilities import BASIC, Capability, caps
from bmshost.driver import DriverSpec, Probe, VariantSpec
from bmshost.hookspecs import hookimpl
from bmshost.registry import DriverRegistry

# The options class is tiny (attrs only) and the core needs the class itself to validate.
from bmshost_jk.options import JkOptions

C = Capability
_PKG = "bmshost_jk"

# What every 300-byte JK02 record and the serial read-all reply carry.
_FULL_READ = caps(
    BASIC,
    C.MOSFET_TEMPERATURE,
    C.CAPACITY_INSTALLED,
    C.CAPACITY_AVAILABLE,
    C.CAPACITY_CONSUMED,
    C.MIN_MAX_CELL_VOLTAGE,
    C.MIN_MAX_TEMPERATURE,
    C.BALANCING_STATUS,
    C.ALLOW_TO_CHARGE_STATE,
    C.ALLOW_TO_DISCHARGE_STATE,
    C.ALLOW_TO_BALANCE_STATE,
    C.SINGLE_CELL_DETAILS,
    C.RAISE_ALARMS,
    C.CHARGE_CYCLE_HISTORY,
    C.BMS_CURRENT_LIMITS,
)
SERIAL_CAPS = _FULL_READ
BLE_CAPS = caps(
    _FULL_READ, C.SOH, C.HEATING, C.DISABLE_CHARGING, C.DISABLE_DISCHARGING, C.DISABLE_BALANCING
)
PB_CAPS = caps(_FULL_READ, C.SOH, C.HEATING, C.DAISY_CHAIN)
# v1 has pack values, extremes and alarms; the min/max cell voltages it sends have no field in
# the sample model yet (they are kept in `extra`), so that row is not claimed.
CAN_V1_CAPS = caps(
    BASIC, C.MIN_MAX_CELL_VOLTAGE, C.MIN_MAX_TEMPERATURE, C.RAISE_ALARMS, C.DAISY_CHAIN
)
CAN_V2_CAPS = caps(
    CAN_V1_CAPS,
    C.MOSFET_TEMPERATURE,
    C.CAPACITY_INSTALLED,
    C.CAPACITY_AVAILABLE,
    C.CAPACITY_CONSUMED,
    C.MIN_MAX_CELL_VOLTAGE,
    C.BALANCING_STATUS,
    C.ALLOW_TO_CHARGE_STATE,
    C.ALLOW_TO_DISCHARGE_STATE,
    C.SINGLE_CELL_DETAILS,
    C.CHARGE_CYCLE_HISTORY,
)

# Read-all, source "PC" (spec §1.1); PB settings trigger to address 1 (spec §1.3). Tests check
# these literals against the codecs.
SERIAL_READ_ALL = bytes.fromhex("4e5700130000000006030000000000006800000129")
PB_SETTINGS_TRIGGER_ADDR1 = bytes.fromhex("0110161e0001020000d22f")
BLE_UUID = "0000ffe1-0000-1000-8000-00805f9b34fb"
BLE_SERVICE = "0000ffe0-0000-1000-8000-00805f9b34fb"


def driver_spec() -> DriverSpec:
    return DriverSpec(
        name="jk",
        description="JK BMS: RS485/UART 0x4E57, BLE JK02 (24/32 cells), PB inverter BMS, CAN",
        options=JkOptions,
        variants=(
            VariantSpec(
                name="serial",
                transports=("stream",),
                capabilities=SERIAL_CAPS,
                session=f"{_PKG}.serial_session:SerialSession",
                simulator=f"{_PKG}.serial_sim:SerialSimulator",
                decoder=f"{_PKG}.serial_codec:decode",
                recognise=_recognise_serial,
                link_params={"baud": 115200},
                probes=(
                    Probe(request=SERIAL_READ_ALL, link_params={"baud": 115200}, timeout=0.5,
                          accepts=f"{_PKG}.serial_codec:probe_accepts"),
                ),
                description="RS485/GPS-port UART protocol (4E 57 frames), read-only",
            ),
            VariantSpec(
                name="ble",
                transports=("stream",),
                capabilities=BLE_CAPS,
                session=f"{_PKG}.ble_session:BleSession",
                simulator=f"{_PKG}.jk02_sim:BleSimulator",
                decoder=f"{_PKG}.jk02:decode",
                recognise=_recognise_ble,
                link_params={"service_uuid": BLE_SERVICE, "notify_uuid": BLE_UUID,
                             "write_uuid": BLE_UUID, "write_response": False},
                # the ffe0 service with one of the manufacturer ids JK modules advertise
                ble_matchers=(
                    BleMatcher(service_uuid=BLE_SERVICE, manufacturer_id=0x0B65),
                    BleMatcher(service_uuid=BLE_SERVICE, manufacturer_id=0x4B4A),
                ),
                description="Bluetooth LE, JK02 records (firmware < 11: 24 cells, else 32)",
            ),
            VariantSpec(
                name="pb",
                transports=("stream",),
                capabilities=PB_CAPS,
                session=f"{_PKG}.pb_session:PbSession",
                simulator=f"{_PKG}.pb_sim:PbSimulator",
                decoder=f"{_PKG}.pb_codec:decode",
                recognise=_recognise_pb,
                link_params={"baud": 115200},
                probes=(
                    Probe(request=PB_SETTINGS_TRIGGER_ADDR1, link_params={"baud": 115200},
                          address=1, timeout=0.5, accepts=f"{_PKG}.pb_codec:probe_accepts"),
                ),
                description="PB / inverter BMS on RS485, Modbus trigger protocol, addresses 1-15",
            ),
            VariantSpec(
                name="can",
                transports=("can",),
                capabilities=CAN_V1_CAPS,
                session=f"{_PKG}.can_session:CanSession",
                simulator=f"{_PKG}.can_sim:CanSimulator",
                decoder=f"{_PKG}.can_codec:decode",
                link_params={"bitrate": 250000},
                description="CAN v1 broadcasts (11-bit ids), 250 kbit/s",
            ),
            VariantSpec(
                name="can_v2",
                transports=("can",),
                capabilities=CAN_V2_CAPS,
                session=f"{_PKG}.can_session:CanSession",
                simulator=f"{_PKG}.can_sim:CanSimulator",
                decoder=f"{_PKG}.can_codec:decode",
                link_params={"bitrate": 250000},
                description="CAN v2 (JK 2023+, inverter BMS): v1 plus 29-bit cell and state frames",
            ),
        ),
    )


def _recognise_serial(frame: bytes) -> bool:
    return frame[:2] == b"\x4e\x57"


def _recognise_ble(frame: bytes) -> bool:
    """A bare JK02 record or a host command; a record followed by a Modbus acknowledge is PB."""
    if frame[:4] == b"\xaa\x55\x90\xeb":
        return True
    return frame[:4] == b"\x55\xaa\xeb\x90" and not _recognise_pb(frame)


def _recognise_pb(frame: bytes) -> bool:
    from bmshost_jk.pb_codec import recognise

    return recognise(frame)


@hookimpl
def bmshost_register_drivers(registry: DriverRegistry) -> None:
    registry.add(driver_spec())
