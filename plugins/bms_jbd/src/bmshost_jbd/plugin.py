"""Hook implementations of bmshost-jbd: registers the ``jbd`` driver and its variants.

Kept import-light: sessions, simulators and decoders are lazy references.
"""

from __future__ import annotations

import importlib

from bmshost.capabilities import BASIC, Capability, caps
from bmshost.driver import DriverSpec, Probe, VariantSpec
from bmshost.hookspecs import hookimpl
from bmshost.registry import DriverRegistry
from bmshost_jbd import codec
from bmshost_jbd.options import JbdOptions

SERIAL_CAPABILITIES = caps(
    BASIC,
    Capability.MOSFET_TEMPERATURE,
    Capability.CAPACITY_INSTALLED,
    Capability.CAPACITY_AVAILABLE,
    Capability.CAPACITY_CONSUMED,
    Capability.MIN_MAX_CELL_VOLTAGE,
    Capability.MIN_MAX_TEMPERATURE,
    Capability.BALANCING_STATUS,  # the table says No, but 0x03 carries per-cell balance bits
    Capability.ALLOW_TO_CHARGE_STATE,
    Capability.ALLOW_TO_DISCHARGE_STATE,
    Capability.ALLOW_TO_BALANCE_STATE,
    Capability.SINGLE_CELL_DETAILS,
    Capability.RAISE_ALARMS,
    Capability.CHARGE_CYCLE_HISTORY,
    Capability.SOC_RESET,
    Capability.DISABLE_CHARGING,
    Capability.DISABLE_DISCHARGING,
    Capability.DISABLE_BALANCING,
)

SERIAL = VariantSpec(
    name="serial",
    transports=("stream",),
    capabilities=SERIAL_CAPABILITIES,
    session="bmshost_jbd.session:JbdSession",
    simulator="bmshost_jbd.simulator:JbdSimulator",
    decoder="bmshost_jbd.codec:decode",
    recognise=codec.recognise,
    link_params={"baud": 9600, "parity": "N", "stopbits": 1},
    probes=(Probe(request=codec.READ_HARDWARE, link_params={"baud": 9600}, timeout=0.5),),
    description="JBD/LLT general protocol over UART, RS485 or RS232 (9600 8N1)",
)


def _variants() -> tuple[VariantSpec, ...]:
    variants: tuple[VariantSpec, ...] = (SERIAL,)
    try:  # BLE, CAN and UP16S variants live in their own modules
        more = importlib.import_module("bmshost_jbd.more_variants")
    except ModuleNotFoundError as exc:
        if exc.name != "bmshost_jbd.more_variants":
            raise
        return variants
    return variants + tuple(more.variants())


@hookimpl
def bmshost_register_drivers(registry: DriverRegistry) -> None:
    registry.add(
        DriverSpec(
            name="jbd",
            variants=_variants(),
            description="JBD / LLT / Overkill Solar / Xiaoxiang BMS",
            options=JbdOptions,
        )
    )
