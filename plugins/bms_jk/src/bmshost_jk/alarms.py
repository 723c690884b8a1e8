"""JK protection and warning words mapped to the Venus alarm names.

Two words exist: the serial protocol's warning word (register 0x8B) and the JK02 error mask (BLE
and PB records). Each bit that names a protection the BMS has acted on raises an alarm (level 2);
"low capacity" is only a warning (level 1) because the BMS keeps working.
"""

from __future__ import annotations

from collections.abc import Callable

from bmshost.model import AlarmLevel, alarms_from_bits

# Serial 0x8B warning word (spec §1.1).
SERIAL_ALARM_BITS: dict[int, str] = {
    1: "high_internal_temperature",  # MOSFET over-temperature
    2: "high_voltage",  # charge over-voltage
    3: "low_voltage",  # discharge under-voltage
    4: "high_temperature",  # battery over-temperature
    5: "high_charge_current",
    6: "high_discharge_current",
    7: "cell_imbalance",  # cell delta too large
    8: "high_temperature",  # battery box over-temperature
    9: "low_temperature",  # battery under-temperature
    10: "high_cell_voltage",
    11: "low_cell_voltage",
    12: "internal_failure",  # "309_A protection"
    13: "internal_failure",  # "309_B protection"
}
SERIAL_WARNING_BITS: dict[int, str] = {0: "low_soc"}  # low capacity

# JK02 error mask (spec §1.2; 24S records carry only bits 0-15 with the same meaning).
# Bits 18 (GPS disconnected), 19 (modify password) and 28 (GPS lock) are not battery alarms.
JK02_ALARM_BITS: dict[int, str] = {
    0: "bms_cable",  # balance-wire resistance too high: a sense lead is loose
    1: "high_internal_temperature",  # MOSFET over-temperature protection
    2: "internal_failure",  # cell count mismatch
    3: "internal_failure",  # current sensor anomaly
    4: "high_cell_voltage",
    5: "high_voltage",
    6: "high_charge_current",
    7: "high_charge_current",  # charge short circuit
    8: "high_charge_temperature",
    9: "low_charge_temperature",
    10: "internal_failure",  # coprocessor communication
    11: "low_cell_voltage",
    12: "low_voltage",
    13: "high_discharge_current",
    14: "high_discharge_current",  # discharge short circuit
    15: "high_temperature",  # discharge over-temperature
    16: "internal_failure",  # charge MOSFET fault
    17: "internal_failure",  # discharge MOSFET fault
    20: "internal_failure",  # discharge switch-on failed
    21: "high_temperature",  # battery over-temperature
    22: "internal_failure",  # temperature sensor fault
    23: "internal_failure",  # PCL module fault
    24: "internal_failure",  # short-circuit release failed (fw >= 15)
    25: "high_discharge_current",  # discharge OCP II
    26: "high_discharge_current",  # discharge OCP III
    27: "low_temperature",  # discharge under-temperature alarm
}
JK02_24S_ALARM_BITS: dict[int, str] = {b: n for b, n in JK02_ALARM_BITS.items() if b < 16}

# CAN ALM_INFO: 2-bit level per pair; vendor levels 1 serious, 2 important, 3 general.
CAN_ALARM_PAIRS: dict[int, str] = {
    0: "high_cell_voltage",
    1: "low_cell_voltage",
    2: "high_voltage",
    3: "low_voltage",
    4: "cell_imbalance",
    5: "high_discharge_current",
    6: "high_charge_current",
    7: "high_temperature",
    8: "low_temperature",
    9: "internal_failure",  # temperature difference too large
    10: "low_soc",
    11: "internal_failure",  # insulation
    12: "internal_failure",  # high-voltage interlock
    13: "bms_cable",  # external communication
    14: "internal_failure",  # internal communication
}
# Serious and important become an alarm, general a warning.
_CAN_LEVELS = {0: AlarmLevel.OK, 1: AlarmLevel.ALARM, 2: AlarmLevel.ALARM, 3: AlarmLevel.WARNING}


# Decoded words, by (table, word): a BMS reports the same word poll after poll. Callers get a
# copy (samples are mutable); bounded so a stream of random words cannot grow it.
_MEMO: dict[tuple[int, int], dict[str, int]] = {}
_MEMO_SIZE = 256


def _memo(kind: int, word: int, decode: Callable[[], dict[str, int]]) -> dict[str, int]:
    key = (kind, word)
    known = _MEMO.get(key)
    if known is None:
        if len(_MEMO) >= _MEMO_SIZE:
            _MEMO.clear()
        known = _MEMO[key] = decode()
    return dict(known)


def _serial_alarms(word: int) -> dict[str, int]:
    out = alarms_from_bits(word, SERIAL_ALARM_BITS)
    for name, level in alarms_from_bits(word, SERIAL_WARNING_BITS, AlarmLevel.WARNING).items():
        out[name] = max(out.get(name, 0), level)
    return out


def serial_alarms(word: int) -> dict[str, int]:
    return _memo(0, word, lambda: _serial_alarms(word))


def jk02_alarms(mask: int, layout_cells: int) -> dict[str, int]:
    table = JK02_24S_ALARM_BITS if layout_cells == 24 else JK02_ALARM_BITS
    return _memo(24 if layout_cells == 24 else 32, mask, lambda: alarms_from_bits(mask, table))


def can_alarms(word: int) -> dict[str, int]:
    out: dict[str, int] = {}
    for pair, name in CAN_ALARM_PAIRS.items():
        level = int(_CAN_LEVELS[(word >> (2 * pair)) & 3])
        out[name] = max(out.get(name, 0), level)
    return out
