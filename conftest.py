"""pytest options shared by ``tests/`` and ``tb/`` (read back through the environment, see
``tb/harness.py``): ``--long`` (``LOWBIT_LONG=1``: opt-in long sweeps; tests marked ``long`` are
skipped without it), ``--seed N`` (``LOWBIT_SEED``) and ``--waves`` (``LOWBIT_WAVES=1``)."""

import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("lowbit")
    group.addoption("--long", action="store_true", help="run the long sweeps (same as LOWBIT_LONG=1)")
    group.addoption("--seed", type=int, metavar="N", help="seed of randomized tests (sets LOWBIT_SEED)")
    group.addoption("--waves", action="store_true", help="write FST waves of cocotb runs (LOWBIT_WAVES=1)")


def _long():
    return os.environ.get("LOWBIT_LONG", "") not in ("", "0")


def pytest_configure(config):
    if config.getoption("long"):
        os.environ["LOWBIT_LONG"] = "1"
    if config.getoption("seed") is not None:
        os.environ["LOWBIT_SEED"] = str(config.getoption("seed"))
    if config.getoption("waves"):
        os.environ["LOWBIT_WAVES"] = "1"


def pytest_report_header(config):
    return (f"lowbit: long={'yes' if _long() else 'no'} seed={os.environ.get('LOWBIT_SEED', 'per test')} "
            f"waves={'yes' if os.environ.get('LOWBIT_WAVES', '') not in ('', '0') else 'no'}")


def pytest_collection_modifyitems(config, items):
    if _long():
        return
    skip = pytest.mark.skip(reason="long sweep: run with --long or LOWBIT_LONG=1")
    for item in items:
        if item.get_closest_marker("long") is not None:
            item.add_marker(skip)


def pytest_terminal_summary(terminalreporter):
    """List the cocotb testcases a configuration skipped (``@cocotb.skipif``): they ran inside a
    passing pytest test, so pytest's own skip count does not show them."""
    lines = []
    for report in terminalreporter.stats.get("passed", []):
        for key, value in getattr(report, "user_properties", ()):
            if key == "cocotb_skipped" and report.when == "call":
                lines.append(f"{report.nodeid}: {value}")
    if lines:
        terminalreporter.section("cocotb testcases skipped")
        for line in sorted(lines):
            terminalreporter.line(line)
