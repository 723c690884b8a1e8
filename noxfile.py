"""Developer sessions. Every session runs in the uv workspace environment (``uv sync`` once),
so nox does not build a virtual environment of its own per session.

    nox -s tests      # the whole suite (what CI runs)
    nox -s unit       # fast tests only (no daemons, no subprocesses)
    nox -s e2e        # end-to-end tests (dbus-daemon, mosquitto, ptys, subprocesses)
    nox -s lint types # ruff, mypy
    nox -s fuzz       # hypothesis with many more examples
    nox -s bench      # benchmarks; numbers go to docs/performance.md
    nox -s wheels     # build every distribution's wheel into dist/
"""

from __future__ import annotations

import nox

nox.options.sessions = ["tests", "lint", "types"]
nox.options.default_venv_backend = "none"


def _sync(session: nox.Session) -> None:
    session.run("scripts/bootstrap", external=True)


@nox.session
def tests(session: nox.Session) -> None:
    _sync(session)
    session.run("uv", "run", "--no-sync", "pytest", "-q", *session.posargs, external=True)


@nox.session
def unit(session: nox.Session) -> None:
    _sync(session)
    session.run("uv", "run", "--no-sync", "pytest", "-q", "-m", "not e2e", *session.posargs, external=True)


@nox.session
def e2e(session: nox.Session) -> None:
    _sync(session)
    session.run("uv", "run", "--no-sync", "pytest", "-q", "-m", "e2e", *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    session.run("uv", "run", "--no-sync", "ruff", "check", ".", external=True)


@nox.session
def types(session: nox.Session) -> None:
    session.run("uv", "run", "--no-sync", "mypy", external=True)


@nox.session
def fuzz(session: nox.Session) -> None:
    """Property tests with the 'fuzz' hypothesis profile (many more examples per property)."""
    _sync(session)
    session.run(
        "uv", "run", "--no-sync", "pytest", "-q", "-k", "fuzz", "--hypothesis-profile", "fuzz",
        *session.posargs, external=True,
    )


@nox.session
def bench(session: nox.Session) -> None:
    """Run every tests/bench/bench_*.py and print a table (JSON in .benchmarks/latest.json)."""
    _sync(session)
    session.run("uv", "run", "--no-sync", "python", "tests/bench/run_all.py", *session.posargs, external=True)


@nox.session
def wheels(session: nox.Session) -> None:
    session.run("uv", "build", "--all-packages", "-o", "dist", external=True)
