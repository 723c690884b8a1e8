"""Run every ``tests/bench/bench_*.py`` (each in its own process, so memory numbers are its own)
and print one table; the raw numbers go to ``.benchmarks/latest.json``.

    uv run python tests/bench/run_all.py [NAME ...]     # or: nox -s bench
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).parent


def main(argv: list[str]) -> int:
    selected = set(argv)
    results: dict[str, object] = {}
    failed = False
    for path in sorted(HERE.glob("bench_*.py")):
        name = path.stem.removeprefix("bench_")
        if selected and name not in selected:
            continue
        started = time.monotonic()
        proc = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            failed = True
            print(f"{name}: FAILED\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        line = proc.stdout.strip().splitlines()[-1]
        results[name] = json.loads(line)
        print(f"== {name} ({time.monotonic() - started:.0f} s)")
        for key, value in results[name].items():  # type: ignore[union-attr]
            print(f"   {key:<48} {value}")
    out = Path(".benchmarks")
    out.mkdir(exist_ok=True)
    meta = {"python": platform.python_version(), "machine": platform.machine(), "when": time.strftime("%Y-%m-%d")}
    (out / "latest.json").write_text(json.dumps({"meta": meta, "results": results}, indent=1))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
