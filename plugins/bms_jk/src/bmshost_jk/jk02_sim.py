"""JK02 records built from a simulated pack (shared by the BLE and PB simulators), and the BLE
device side: commands in, records out."""

from __future__ import annotations

from bmshost.driver import Simulator
from bmshost.errors import FrameError
from bmshost.model import Sample
from bmshost_jk import jk02
from bmshost_jk.pack import Pack

ERR_CELL_OVP, ERR_CELL_UVP = 1 << 4, 1 << 11


def cell_record(pack: Pack, slots: int, counter: int = 0) -> bytes:
    mv = pack.cell_mv()
    hi, lo = mv.index(max(mv)), mv.index(min(mv))
    errors = (ERR_CELL_OVP if pack.ovp_tripped else 0) | (ERR_CELL_UVP if pack.uvp_tripped else 0)
    values = {
        "cell_mask": (1 << pack.cells) - 1,
        "cell_avg_mv": round(sum(mv) / len(mv)),
        "cell_delta_mv": max(mv) - min(mv),
        "cell_max_no": hi,
        "cell_min_no": lo,
        "mos_temp": round(pack.mosfet_temperature * 10),
        "voltage_mv": sum(mv),
        "power_mw": round(abs(sum(mv) * pack.current)),
        "current_ma": round(pack.current * 1000),
        "temp1": round(pack.temperatures[0] * 10),
        "temp2": round(pack.temperatures[1] * 10),
        "errors32": errors,
        "errors16": errors & 0xFFFF,
        "balance_ma": 200 if pack.balancing else 0,
        "balance_action": 1 if pack.balancing else 0,
        "soc": round(pack.soc),
        "remaining_mah": round(pack.remaining_ah * 1000),
        "nominal_mah": round(pack.capacity_ah * 1000),
        "cycles": pack.cycles,
        "cycle_capacity_mah": round(pack.cycles * pack.capacity_ah * 1000),
        "soh": 100,
        "runtime_s": int(pack.elapsed),
        "charge_fet": int(pack.charge_fet),
        "discharge_fet": int(pack.discharge_fet),
        "temp_mask": 0b111,  # MOSFET, sensor 1, sensor 2
        "heating": int(pack.heating),
        "heater_ma": 1500 if pack.heating else 0,
    }
    return jk02.encode_cell_info(values, mv, slots, counter)


def settings_record(pack: Pack, address: int = 0, counter: int = 0) -> bytes:
    return jk02.encode_settings({
        "cell_uvp_mv": pack.cell_uvp_mv, "cell_uvpr_mv": pack.cell_uvpr_mv,
        "cell_ovp_mv": pack.cell_ovp_mv, "cell_ovpr_mv": pack.cell_ovpr_mv,
        "balance_trigger_mv": pack.balance_trigger_mv,
        "max_charge_ma": round(pack.max_charge_current * 1000),
        "max_discharge_ma": round(pack.max_discharge_current * 1000),
        "max_balance_ma": 2000, "cell_count": pack.cells,
        "charge_switch": int(pack.charge_switch), "discharge_switch": int(pack.discharge_switch),
        "balancer_switch": int(pack.balancer_switch),
        "nominal_mah": round(pack.capacity_ah * 1000),
        "balance_start_mv": pack.balance_start_mv, "device_address": address,
    }, counter)


def device_record(pack: Pack, model: str, firmware: str) -> bytes:
    return jk02.encode_device_info({
        "vendor_id": model, "hw_version": firmware.split(".")[0] + "A", "sw_version": firmware,
        "device_name": "bmshost-sim", "manufacturing_date": "240614",
        "serial_number": pack.serial_number,
    }, uptime_s=int(pack.elapsed), power_on=3)


def _version(firmware: str) -> tuple[int, int]:
    major, _, minor = firmware.partition(".")
    digits = "".join(c for c in minor if c.isdigit())
    return (int(major) if major.isdigit() else 0, int(digits) if digits else 0)


class BleSimulator(Simulator):
    """A JK BLE BMS. ``firmware`` decides the layout (< 11: 24 cell slots) and whether the
    firmware-19 ready message follows the device info; ``at_lines`` injects the BLE module's
    ``AT\\r\\n`` lines before records."""

    kind = "stream"

    def __init__(self, cells: int = 16, capacity: float = 280.0, soc: float = 55.0,
                 current: float = 5.0, seed: int = 1, firmware: str | float = "11.48",
                 model: str = "JK_B2A16S20P", at_lines: int = 0) -> None:
        self.pack = Pack(cells=cells, capacity_ah=capacity, soc=soc, load_current=current,
                         seed=seed)
        self.firmware = str(firmware)  # sim: URLs turn 11.48 into a number
        self.model = model
        self.slots = jk02.firmware_slots(self.firmware) or 32
        if cells > self.slots:
            raise ValueError(f"firmware {self.firmware} has {self.slots} cell slots, not {cells}")
        self.at_lines = at_lines
        self.streaming = False
        self.writes: list[tuple[int, int]] = []
        self._counter = 0
        self._buf = bytearray()

    def tick(self, dt: float) -> None:
        self.pack.tick(dt)

    def _next(self) -> int:
        self._counter = (self._counter + 1) & 0xFF
        return self._counter

    def _out(self, record: bytes) -> bytes:
        at = self.at_lines and self._counter % self.at_lines == 0
        return (jk02.AT_LINE if at else b"") + record

    def stream(self) -> bytes:
        """The record a streaming BMS sends about once a second (for wrappers)."""
        if not self.streaming or self.silent:
            return b""
        return self._out(cell_record(self.pack, self.slots, self._next()))

    def _handle(self, register: int, value: int | None) -> bytes:
        if register == jk02.REQ_DEVICE_INFO:
            out = self._out(device_record(self.pack, self.model, self.firmware))
            if _version(self.firmware) >= (19, 5):
                out += jk02.READY_MESSAGE
            return out
        if register == jk02.REQ_CELL_INFO:
            self.streaming = True
            return (self._out(settings_record(self.pack, counter=self._next()))
                    + self._out(cell_record(self.pack, self.slots, self._next())))
        if value is None:
            return b""
        self.writes.append((register, value))
        p = self.pack
        if register == jk02.REG_CHARGE_FET:
            p.charge_switch = bool(value)
        elif register == jk02.REG_DISCHARGE_FET:
            p.discharge_switch = bool(value)
        elif register == jk02.REG_BALANCER:
            p.balancer_switch = bool(value)
        elif register == jk02.REG_OVP:
            p.cell_ovp_mv = value
        elif register == jk02.REG_OVPR:
            p.cell_ovpr_mv = value
        p.check_protections()
        return b""

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while True:
            start = self._buf.find(jk02.COMMAND_HEADER)
            if start < 0:
                del self._buf[: max(0, len(self._buf) - 3)]
                break
            del self._buf[:start]
            if len(self._buf) < 20:
                break
            frame = bytes(self._buf[:20])
            try:
                register, value = jk02.parse_command(frame)
            except FrameError:
                del self._buf[:1]
                continue
            del self._buf[:20]
            out += self._handle(register, value)
        return b"" if self.silent else bytes(out)

    def state(self) -> Sample:
        return self.pack.truth()
