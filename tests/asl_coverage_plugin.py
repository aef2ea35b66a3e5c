"""pytest plugin: the ASL coverage report of every execution the test session ran (issue 8, "Every state and edge").

Where the histories come from: every local runtime of a session keeps each execution's full GetExecutionHistory
answer on disk (``<home>/executions/*.json``, local_aws/stepfunctions/executions.py), and every test's runtime home
is under the session's ``tmp_path_factory`` base directory: the in-process local AWS of the integration tests, and
the ``ops up`` subprocesses of the persistence and e2e tests (their homes are ``tmp_path_factory.mktemp`` dirs too).
So the report reads those records once the session ends, after the session fixtures stopped their runtimes (which
writes each record a last time), whatever process ran the execution. ``--asl-coverage-from DIR`` adds more record
directories (a saved run, for example).

At the end of the run it prints ``asl_state_coverage=<x.xx>``, ``asl_catch_coverage=<x.xx>`` (and the informational
``asl_retry_coverage``) with the states and edges never taken. ``--asl-coverage-target=1.0`` (``make test`` passes
it) fails the session when the state or the Catch coverage is below the target; without it nothing fails, so
``pytest -m unit`` or a ``-k`` subset runs as before.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from local_aws.constants import ASL_PATH
from tests.asl_coverage import Report, report

_REPORT = pytest.StashKey[Report]()
_FAILED = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("asl-coverage", "ASL state/edge coverage of the executions a session ran")
    group.addoption(
        "--asl-coverage-target",
        type=float,
        default=None,
        metavar="FRACTION",
        help="fail the session when the ASL state or Catch-edge coverage is below FRACTION (e.g. 1.0)",
    )
    group.addoption(
        "--asl-coverage-from",
        action="append",
        default=[],
        metavar="DIR",
        help="also read the execution records in DIR (*.json) and under it (**/executions/*.json); may be repeated",
    )
    group.addoption(
        "--asl-coverage-json",
        default=None,
        metavar="PATH",
        help="write the full report (states entered, edges taken and missing) to PATH as JSON",
    )


def record_files(roots: list[Path], saved: list[Path]) -> Iterator[Path]:
    """Every execution record (``**/executions/*.json``) under ``roots``, and every ``*.json`` in ``saved``, once."""
    seen: set[Path] = set()
    paths = [p for r in roots if r.is_dir() for p in sorted(r.glob("**/executions/*.json"))]
    paths += [p for d in saved if d.is_dir() for p in sorted(d.glob("*.json"))]
    for path in paths:
        if path.resolve() not in seen:
            seen.add(path.resolve())
            yield path


def histories(paths: Iterator[Path]) -> Iterator[list[dict[str, Any]]]:
    """The ``events`` of each record; a file being rewritten or not a record is skipped."""
    for path in paths:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            continue
        if isinstance(doc, dict) and isinstance(doc.get("events"), list):
            yield doc["events"]


def _session_roots(config: pytest.Config) -> list[Path]:
    roots = [Path(p) for p in config.getoption("--asl-coverage-from")]
    # NOTE: pytest exposes the session's TempPathFactory to fixtures only; the tmpdir plugin stores it on the config
    # (pytest 8 and 9), which is the one way to find the base directory after the fixtures are gone.
    factory = getattr(config, "_tmp_path_factory", None)
    if factory is not None:
        roots.append(factory.getbasetemp())
    return roots


@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    target = config.getoption("--asl-coverage-target")
    saved = [Path(p) for p in config.getoption("--asl-coverage-from")]
    found = report(json.loads(ASL_PATH.read_text()), histories(record_files(_session_roots(config), saved)))
    if found.taken.executions == 0 and target is None:
        return
    config.stash[_REPORT] = found
    out = config.getoption("--asl-coverage-json")
    if out:
        Path(out).write_text(json.dumps(as_json(found), indent=2) + "\n", encoding="utf-8")
    if target is None:
        return
    below = [k for k in ("State", "Catch") if found.ratio(k) < target]
    if below:
        config.stash[_FAILED] = ", ".join(f"{k.lower()} coverage {found.ratio(k):.4f}" for k in below)
        if session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    found = config.stash.get(_REPORT, None)
    if found is None:
        return
    terminalreporter.section("ASL coverage")
    for line in found.lines():
        terminalreporter.write_line(line)
    failed = config.stash.get(_FAILED, None)
    if failed:
        target = config.getoption("--asl-coverage-target")
        terminalreporter.write_line(f"FAIL: {failed} is below --asl-coverage-target={target:g}", red=True)


def as_json(found: Report) -> dict[str, Any]:
    """The report as data: every figure, what was taken and what was not."""
    return {
        "coverage": {kind.lower(): found.ratio(kind) for kind in ("State", "Catch", "Retry")},
        "executions": found.taken.executions,
        "states_entered": sorted(found.taken.states),
        "states_missing": found.missing_states(),
        "edges_taken": [str(e) for e in sorted(found.taken.edges)],
        "catch_missing": [str(e) for e in found.missing("Catch")],
        "retry_missing": [str(e) for e in found.missing("Retry")],
    }
