"""The synthesis flows (hw.synth): parsing and timing helpers, the CLI's errors, and (marked
``synth``) the smoke run through every flow, area ordering, determinism and pre-mapping cells."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

from hw.synth import cli_main, config_from_args, find_unit, premap_cells, run_configs
from hw.synth.config import BUNDLED_LIBERTY, PDK_LIBERTY, Liberty, find_liberty, scripts_dir
from hw.synth.flows import SETTINGS, FlowEnv, fmax_from_report, tool_versions, unpack_liberty
from hw.synth.reference import RefMac
from hw.synth.report import build_report, main_table
from hw.synth import timing
from hw.synth.timing import Table, WireLoad, find_sta, nldm_delay, opensta_delay, read_liberty_cells, read_wire_load
from hw.units import UNITS

# A two-cell liberty: delays are linear in load so the expected path delay can be computed by hand.
_TINY_LIB = """
library (tiny) {
  time_unit : "1ns";
  default_wire_load : "w";
  wire_load ("w") {
    capacitance : 0.01; resistance : 0.1; slope : 2.0;
    fanout_length (1, 10.0);
    fanout_length (2, 15.0);
  }
  lu_table_template ("del_2_2") {
    variable_1 : "input_net_transition";
    variable_2 : "total_output_net_capacitance";
    index_1("0.0, 1.0"); index_2("0.0, 1.0");
  }
  lu_table_template ("vio_2_2") {
    variable_1 : "related_pin_transition";
    variable_2 : "constrained_pin_transition";
    index_1("0.0, 1.0"); index_2("0.0, 1.0");
  }
  cell ("inv") {
    area : 2.0;
    pin ("A") { direction : "input"; capacitance : 0.5; }
    pin ("Y") {
      direction : "output"; function : "!A";
      timing () {
        related_pin : "A"; timing_sense : "negative_unate";
        cell_rise ("del_2_2") { values("0.10, 0.30", "0.20, 0.40"); }
        cell_fall ("del_2_2") { values("0.05, 0.25", "0.15, 0.35"); }
        rise_transition ("del_2_2") { values("0.0, 0.0", "0.0, 0.0"); }
        fall_transition ("del_2_2") { values("0.0, 0.0", "0.0, 0.0"); }
      }
    }
  }
  cell ("dff") {
    area : 10.0;
    ff ("IQ", "IQN") { clocked_on : "CLK"; next_state : "D"; }
    pin ("CLK") { direction : "input"; capacitance : 0.1; clock : "true"; }
    pin ("D") {
      direction : "input"; capacitance : 0.5;
      timing () {
        related_pin : "CLK"; timing_type : "setup_rising";
        rise_constraint ("vio_2_2") { values("0.07, 0.07", "0.07, 0.07"); }
        fall_constraint ("vio_2_2") { values("0.09, 0.09", "0.09, 0.09"); }
      }
    }
    pin ("Q") {
      direction : "output"; function : "IQ";
      timing () {
        related_pin : "CLK"; timing_type : "rising_edge"; timing_sense : "non_unate";
        cell_rise ("del_2_2") { values("0.50, 0.50", "0.50, 0.50"); }
        cell_fall ("del_2_2") { values("0.60, 0.60", "0.60, 0.60"); }
      }
    }
  }
}
"""


def _cell(kind, **conns):
    return {"type": kind, "connections": {k: list(v) for k, v in conns.items()}}


def test_table_interpolates_and_extrapolates_linearly():
    table = Table(("input_net_transition", "total_output_net_capacitance"), ((0.0, 1.0), (0.0, 1.0)),
                  (0.1, 0.3, 0.2, 0.4))
    assert table.lookup(input_net_transition=0.5, total_output_net_capacitance=0.5) == pytest.approx(0.25)
    assert table.lookup(input_net_transition=0.0, total_output_net_capacitance=2.0) == pytest.approx(0.5)


def test_nldm_delay_sums_arcs_with_their_loads():
    cells = read_liberty_cells(_TINY_LIB, {"inv"})
    # a -> inv u1 -> inv u2 -> y; u1 drives u2's input (0.5), u2 drives the unloaded output.
    module = {"ports": {"a": {"direction": "input", "bits": [2]}, "y": {"direction": "output", "bits": [4]}},
              "cells": {"u1": _cell("inv", A=[2], Y=[3]), "u2": _cell("inv", A=[3], Y=[4])}}
    delay, endpoint = nldm_delay(module, cells)
    # u1 at load 0.5: rise 0.2, fall 0.15. u2 unloaded: rise (from u1 fall) 0.15 + 0.10, fall 0.2 + 0.05.
    assert delay == pytest.approx(0.25)
    assert endpoint == "y[0]"


def test_nldm_delay_registered_path_includes_clock_to_q_and_setup():
    cells = read_liberty_cells(_TINY_LIB, {"inv", "dff"})
    module = {"ports": {"clk": {"direction": "input", "bits": [1]}},
              "cells": {"r1": _cell("dff", CLK=[1], D=[3], Q=[2]), "u1": _cell("inv", A=[2], Y=[3])}}
    delay, endpoint = nldm_delay(module, cells)
    # Q rises 0.5 / falls 0.6; inverter (load 0.5): rise 0.6 + 0.2, fall 0.5 + 0.15; setup 0.07 / 0.09.
    assert delay == pytest.approx(0.87)
    assert endpoint == "r1/D"


def test_wire_load_adds_capacitance_and_wire_delay():
    wire = read_wire_load(_TINY_LIB)
    assert wire == WireLoad(0.01, 0.1, 2.0, ((1, 10.0), (2, 15.0)))
    assert wire.length(4) == pytest.approx(19.0)
    cells = read_liberty_cells(_TINY_LIB, {"inv"})
    module = {"ports": {"a": {"direction": "input", "bits": [2]}, "y": {"direction": "output", "bits": [3]}},
              "cells": {"u1": _cell("inv", A=[2], Y=[3])}}
    # Net a: one sink (cap 0.5), length 10: wire cap 0.1, R 1.0 -> delay 1.0 * (0.05 + 0.5) = 0.55.
    # Net y: the output port, wire cap 0.1 and delay 1.0 * 0.05; u1 rise 0.10 + 0.2 * 0.1 = 0.12.
    delay, _ = nldm_delay(module, cells, wire)
    assert delay == pytest.approx(0.55 + 0.12 + 0.05)


def test_liberty_rejects_unknown_cells():
    with pytest.raises(ValueError, match="nand"):
        read_liberty_cells(_TINY_LIB, {"nand"})


def test_fmax_picks_the_wrapper_clock_and_notes_others():
    report = {"fmax": {"clk$SB_IO_IN_$glb_clk": {"achieved": 51.234, "constraint": 24}},
              "critical_paths": [{"from": "posedge clk$SB_IO_IN_$glb_clk", "to": "posedge $PACKER_GND_NET_$glb_clk"},
                                 {"from": "<async>", "to": "posedge clk$SB_IO_IN_$glb_clk"}]}
    out = fmax_from_report(report)
    assert out["fmax_mhz"] == 51.23
    assert "$PACKER_GND_NET_$glb_clk" in out["fmax_note"]
    ecp5 = fmax_from_report({"fmax": {"$glbnet$clk$TRELLIS_IO_IN": {"achieved": 100.0}}})
    assert ecp5 == {"fmax_mhz": 100.0}


def test_opensta_delay_is_period_minus_worst_slack(tmp_path, monkeypatch):
    sta = tmp_path / "bin" / "sta"
    sta.parent.mkdir()
    sta.write_text("#!/bin/sh\necho '           997.5000   slack (MET)'\n")
    sta.chmod(sta.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{sta.parent}{os.pathsep}{os.environ['PATH']}")
    assert find_sta() == str(sta)
    (tmp_path / "opensta.tcl").write_text("")
    assert opensta_delay(find_sta(), tmp_path, "opensta.tcl", 1000.0, "opensta.log") == pytest.approx(2.5)


def test_cli_config_ids_are_stable_and_label_the_given_flags():
    unit = find_unit("ref_mac")
    a = config_from_args(unit, {"width": 4})
    assert a.id == config_from_args(unit, {"width": 4}).id != config_from_args(unit, {"width": 5}).id
    assert a.label == "--width 4"
    assert a.macs == 1 and config_from_args(unit, {"op": "add"}).macs is None
    assert a.lanes is None


@pytest.mark.parametrize("name", ["luq", "tpr_quantize", "amax"])
def test_quantizers_are_measured_per_lane(name):
    """The quantizers and the reducer do no multiply-accumulate: their area is given per lane."""
    config = config_from_args(find_unit(name), {"lanes": 16})
    assert config.lanes == 16 and config.macs is None
    report = build_report([{"id": "q", "unit": name, "label": "", "macs": None, "lanes": 16,
                            "flows": {"asic": {"area_um2": 8000.0}}}], [], None, {})
    (row,) = report["configs"]
    assert row["area_per_lane_um2"] == 500.0 and row["area_per_mac_um2"] is None
    assert "500.0" in main_table(report)[-1]


@pytest.mark.parametrize("argv, message", [
    (["no_such_unit"], "unknown unit"),
    (["--bogus"], "unknown option"),
    (["ref_mac", "--width", "x"], "--width"),
    (["ref_mac", "--flows", "asic,foo"], "--flows"),
    (["ref_mac", "--liberty", "/nonexistent/cells.lib.gz"], "liberty file not found"),
    (["ref_mac", "--width", "0", "--flows", "generic"], "does not build"),
])
def test_cli_user_errors_are_one_line(argv, message, capsys, tmp_path):
    assert cli_main([*argv, "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("lowbit: error: ") and message in err
    assert err.count("\n") == 1


def test_synth_cli_does_not_import_the_lowbit_cli():
    """``hw.cli`` registers ``synth`` in its command table; ``hw.synth.cli`` takes the shared argument
    helpers from ``hw.cliargs``, so the two command modules form no import cycle."""
    code = "import sys, hw.synth.cli; print(sorted(m for m in sys.modules if m in ('hw.cli', 'hw.cliargs')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["['hw.cliargs']"]
    from hw.cli import COMMANDS
    assert "synth" in COMMANDS


def test_liberty_lookup_order_ends_with_the_bundled_copy(tmp_path):
    pdk_root = tmp_path / "pdk"
    pdk = pdk_root / PDK_LIBERTY
    pdk.parent.mkdir(parents=True)
    pdk.write_text("library (x) {}\n")
    assert PDK_LIBERTY.as_posix() == "sky130A/libs.ref/sky130_fd_sc_hd/lib/sky130_fd_sc_hd__tt_025C_1v80.lib"
    assert find_liberty(environ={}) == Liberty(BUNDLED_LIBERTY, "bundled")
    assert BUNDLED_LIBERTY.is_file()
    assert find_liberty(environ={"PDK_ROOT": str(pdk_root)}) == Liberty(pdk, "$PDK_ROOT")
    elsewhere = find_liberty(environ={"PDK_ROOT": str(tmp_path / "other")})
    assert elsewhere.path == BUNDLED_LIBERTY and "$PDK_ROOT has no" in elsewhere.note
    env = {"PDK_ROOT": str(pdk_root), "LOWBIT_LIBERTY": "/x/y.lib"}
    assert find_liberty(environ=env) == Liberty(Path("/x/y.lib"), "$LOWBIT_LIBERTY")
    assert find_liberty("/a.lib", environ=env) == Liberty(Path("/a.lib"), "--liberty")
    assert Liberty(BUNDLED_LIBERTY, "bundled").label == "hw/synth/liberty/sky130_fd_sc_hd__tt_025C_1v80.lib.gz"


def test_bundled_liberty_is_the_documented_file_with_its_licence():
    folder = BUNDLED_LIBERTY.parent
    readme, data = (folder / "README.md").read_text(), BUNDLED_LIBERTY.read_bytes()
    assert hashlib.sha256(data).hexdigest() in readme
    assert hashlib.sha256(gzip.decompress(data)).hexdigest() in readme
    for source in ("google/skywater-pdk-libs-sky130_fd_sc_hd", "timing/sky130_fd_sc_hd__tt_025C_1v80.lib",
                   "The-OpenROAD-Project/OpenSTA"):
        assert source in readme
    licence = (folder / "LICENSE").read_text()
    assert "Apache License" in licence and "Version 2.0, January 2004" in licence
    assert "END OF TERMS AND CONDITIONS" in licence  # the full text, not a pointer to it


def test_a_missing_liberty_names_where_it_came_from(monkeypatch, capsys, tmp_path):
    monkeypatch.setenv("LOWBIT_LIBERTY", str(tmp_path / "none.lib"))
    assert cli_main(["ref_mac", "--flows", "asic", "--out", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lowbit: error: liberty file not found: {tmp_path / 'none.lib'} (from $LOWBIT_LIBERTY")
    assert err.count("\n") == 1


def test_an_unreadable_liberty_is_one_line(capsys, tmp_path):
    bad = tmp_path / "cells.lib.gz"
    bad.write_text("not gzip data\n")
    assert cli_main(["ref_mac", "--flows", "asic", "--liberty", str(bad), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"lowbit: error: cannot read liberty {bad} (from --liberty): ") and err.count("\n") == 1


def test_unpacked_liberty_follows_the_bytes_of_its_source(tmp_path):
    newer, older = tmp_path / "pdk" / "cells.lib", tmp_path / "bundled" / "cells.lib.gz"
    newer.parent.mkdir()
    older.parent.mkdir()
    newer.write_text("library (pdk) {}\n")
    older.write_bytes(gzip.compress(b"library (bundled) {}\n"))
    os.utime(older, (1_000_000, 1_000_000))  # the bundled copy is older than any unpacked file
    out = tmp_path / "out"
    assert unpack_liberty(newer, out).read_text() == "library (pdk) {}\n"
    assert unpack_liberty(older, out).read_text() == "library (bundled) {}\n"
    assert unpack_liberty(older, out).read_text() == "library (bundled) {}\n"
    assert unpack_liberty(newer, out).read_text() == "library (pdk) {}\n"


# ---- flows (YoWASP tools) ----------------------------------------------------------------------

def _asic_env(out):
    return FlowEnv(scripts=scripts_dir(), liberty=unpack_liberty(BUNDLED_LIBERTY, out).resolve(), sta=None,
                   versions=tool_versions(BUNDLED_LIBERTY))


@pytest.mark.synth
def test_smoke_runs_every_flow_with_sane_numbers_and_repeats_exactly(tmp_path, monkeypatch):
    monkeypatch.setattr(timing, "find_sta", lambda: None)  # the flow must not depend on OpenSTA
    monkeypatch.delenv("LOWBIT_LIBERTY", raising=False)
    monkeypatch.delenv("PDK_ROOT", raising=False)
    out = tmp_path / "smoke"
    assert cli_main(["--smoke", "--out", str(out), "-j", "2"]) == 0
    first = (out / "report.json").read_text()
    report = json.loads(first)
    assert report["configs"] and not report["not_available"]
    for r in report["configs"]:
        assert not r["errors"]
        asic, generic = r["flows"]["asic"], r["flows"]["generic"]
        assert asic["area_um2"] > 0 and asic["cell_count"] > 0
        assert asic["delay_ns"] > 0 and asic["delay_source"] == "nldm estimate"
        assert all(c.startswith("sky130_fd_sc_hd__") for c in asic["cells"])
        assert not any("clk" in c or "lpflow" in c or "probe" in c for c in asic["cells"])
        assert generic["nand2_eq"] > 0 and generic["depth"] > 0
        for family in ("ice40", "ecp5"):
            for variant in SETTINGS[family]["variants"]:
                v = r["flows"][family]["variants"][variant]
                assert v["luts"] + v["dsps"] > 0 and v["ffs"] > 0 and v["fmax_mhz"] > 0
    assert report["liberty"] == {"path": "hw/synth/liberty/sky130_fd_sc_hd__tt_025C_1v80.lib.gz",
                                 "source": "bundled"}
    markdown = (out / "report.md").read_text()
    assert "| ref_mac |" in markdown
    # The smoke set is a sweep: its outputs come beside the report, with the same numbers.
    sweep = json.loads((out / "sweep.json").read_text())
    assert [p["flows"] for p in sweep["points"]] == [r["flows"] for r in report["configs"]]
    assert sweep["frontier"]["area_delay"] == ["smoke_ref_mac4"]
    assert (out / "sweep.csv").read_text().splitlines()[1].startswith("smoke_ref_mac4,ref_mac,")
    assert (out / "pareto_area_delay.png").is_file() and (out / "area.png").is_file()
    assert "- Liberty: `hw/synth/liberty/sky130_fd_sc_hd__tt_025C_1v80.lib.gz` (bundled with lowbit)" in markdown
    assert cli_main(["--smoke", "--out", str(out), "-j", "2", "--force"]) == 0
    assert (out / "report.json").read_text() == first


@pytest.mark.synth
def test_a_failing_yosys_step_is_one_line_with_exit_status_and_log(tmp_path):
    from hw.synth.flows import _yosys
    from hw.tools import ToolError
    (tmp_path / "broken.ys").write_text("read_verilog missing_file.v\n")
    with pytest.raises(ToolError) as info:
        _yosys(tmp_path, "broken.ys", "asic: yosys")
    message = str(info.value)
    assert "\n" not in message and info.value.returncode not in (None, 0)
    assert message.startswith(f"asic: yosys failed (exit {info.value.returncode}): ERROR")
    assert message.endswith(f"see {tmp_path / 'broken.log'}") and (tmp_path / "broken.log").is_file()
    assert (tmp_path / "broken.out").is_file()


@pytest.mark.synth
def test_bigger_design_reports_more_area(tmp_path):
    env = _asic_env(tmp_path)
    unit = find_unit("ref_mac")
    pairs = [(config_from_args(unit, {"width": 4}), config_from_args(unit, {"width": 8}))]
    if "stochastic_round" in UNITS:
        sr = UNITS["stochastic_round"]
        pairs.append((config_from_args(sr, {"source": "fp16", "target": "e5m2"}),
                      config_from_args(sr, {"source": "fp32", "target": "e5m2"})))
    if "fp8_fma" in UNITS:
        fma = UNITS["fp8_fma"]
        pairs.append((config_from_args(fma, {"a_format": "e5m2", "acc_format": "e6m9"}),
                      config_from_args(fma, {"a_format": "fp16", "acc_format": "fp16"})))
    configs = [c for pair in pairs for c in pair]
    results, unavailable = run_configs(configs, ("asic",), tmp_path, env)
    area = {r["id"]: r["flows"]["asic"]["area_um2"] for r in results}
    checked = 0
    for small, big in pairs:
        if small.id in area and big.id in area:
            assert 0 < area[small.id] < area[big.id], (small.tag, big.tag)
            checked += 1
    assert checked == len(pairs) and not unavailable


@pytest.mark.synth
def test_nldm_estimate_agrees_with_opensta_when_installed(tmp_path):
    if find_sta() is None:
        pytest.skip("OpenSTA (sta) is not installed")
    env = _asic_env(tmp_path)
    config = config_from_args(find_unit("ref_mac"), {"width": 6, "stages": 1})
    delays = {}
    for sta in (find_sta(), None):
        results, _ = run_configs([config], ("asic",), tmp_path / str(bool(sta)), dataclasses.replace(env, sta=sta))
        asic = results[0]["flows"]["asic"]
        delays[asic["delay_source"]] = asic["delay_ns"]
    assert delays["nldm estimate"] == pytest.approx(delays["opensta"], rel=0.05)


@pytest.mark.synth
def test_premap_cells_show_multipliers_only_where_generated(tmp_path):
    assert "$mul" not in premap_cells(RefMac(width=6, op="add"), tmp_path / "add")
    assert premap_cells(RefMac(width=6, op="mac"), tmp_path / "mac").get("$mul") == 1


@pytest.mark.synth
@pytest.mark.long  # FP32 FMA synthesis takes minutes
def test_fp32_fma_is_bigger_than_fp16_fma(tmp_path):
    env = _asic_env(tmp_path)
    fma = UNITS["fp8_fma"]
    small = config_from_args(fma, {"a_format": "fp16", "acc_format": "fp16"})
    big = config_from_args(fma, {"a_format": "fp32", "acc_format": "fp32"})
    results, unavailable = run_configs([small, big], ("asic",), tmp_path, env)
    area = {r["id"]: r["flows"]["asic"]["area_um2"] for r in results}
    assert not unavailable and 0 < area[small.id] < area[big.id]


def test_area_plot_draws_configurations_with_an_area_per_mac(tmp_path):
    pytest.importorskip("matplotlib")
    from hw.synth.report import _plot
    configs = [{"id": "fp16_fma", "unit": "fp8_fma", "area_per_mac_um2": 9000.0},
               {"id": "mac4_dot_l8", "unit": "mac4", "area_per_mac_um2": 800.0},
               {"id": "sr", "unit": "stochastic_round", "area_per_mac_um2": None}]
    note = _plot({"configs": configs, "baseline": "fp16_fma"}, tmp_path / "area.png")
    assert note.startswith("area.png:")
    assert (tmp_path / "area.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    note = _plot({"configs": configs[2:], "baseline": None}, tmp_path / "none.png")
    assert "not written" in note and not (tmp_path / "none.png").exists()


def test_cache_key_covers_the_flow_code_only(monkeypatch):
    import hw.synth.flows as flows
    here = Path(flows.__file__).parent
    base = tool_versions()["lowbit-synth"]
    original = Path.read_bytes

    def key_with_edited(name):
        """The key when one byte is appended to ``hw/synth/<name>``."""
        monkeypatch.setattr(Path, "read_bytes",
                            lambda path: original(path) + (b"#" if path == here / name else b""))
        try:
            return tool_versions()["lowbit-synth"]
        finally:
            monkeypatch.setattr(Path, "read_bytes", original)

    # Every module that computes results is in the key; modules that only present them are not.
    for name in flows.FLOW_SOURCES:
        assert key_with_edited(name) != base, name
    for name in ("report.py", "cli.py", "run.py"):
        assert key_with_edited(name) == base, name


# ---- a user's clone and a non-editable install -----------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]


def _user_env(**extra):
    """The environment of a user who has set nothing for lowbit (no liberty, no PDK)."""
    env = {k: v for k, v in os.environ.items() if k not in ("LOWBIT_LIBERTY", "PDK_ROOT", "PYTHONPATH")}
    return {**env, **extra}


def _run(cmd, cwd, env):
    proc = subprocess.run([str(c) for c in cmd], cwd=cwd, env=env, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc.stdout


def _asic_area(out):
    (result,) = Path(out).glob("*/asic/result.json")
    return json.loads(result.read_text())["result"]["area_um2"]


@pytest.fixture(scope="module")
def clone(tmp_path_factory):
    """A ``git clone`` of this repository's committed state, with no ``shared/`` folder beside it."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    inside = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--is-inside-work-tree"], capture_output=True,
                            text=True)
    if inside.stdout.strip() != "true":
        pytest.skip(f"{ROOT} is not a git checkout")
    path = tmp_path_factory.mktemp("user") / "lowbit"
    _run(["git", "clone", "-q", ROOT, path], ROOT, _user_env())
    assert sorted(p.name for p in path.parent.iterdir()) == ["lowbit"]
    return path.resolve()


@pytest.mark.synth
def test_lowbit_synth_runs_the_asic_flow_in_a_fresh_clone(clone, tmp_path):
    # The clone's own code (cwd and PYTHONPATH), started as the lowbit command: python -m hw.cli.
    out = tmp_path / "out"
    stdout = _run([sys.executable, "-m", "hw.cli", "synth", "ref_mac", "--width", "4", "--flows", "asic",
                   "--out", out], clone, _user_env(PYTHONPATH=str(clone)))
    bundled = clone / "hw" / "synth" / "liberty" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz"
    assert f"liberty: {bundled} (bundled with lowbit)" in stdout.splitlines()
    assert _asic_area(out) > 0


@pytest.mark.synth
def test_a_non_editable_install_runs_lowbit_synth_from_any_folder(clone, tmp_path):
    site, elsewhere, out = tmp_path / "site", tmp_path / "elsewhere", tmp_path / "out"
    elsewhere.mkdir()
    pip = [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-compile", "--target", site]
    try:  # pyproject.toml asks for setuptools >= 68; an older one means an isolated build
        if int(metadata.version("setuptools").split(".")[0]) >= 68:
            pip.append("--no-build-isolation")
    except metadata.PackageNotFoundError:
        pass
    # pip is a tool here, not code under test: its own deprecation warnings are not errors.
    pip_env = {k: v for k, v in _user_env().items() if k != "PYTHONWARNINGS"}
    _run([*pip, clone], elsewhere, pip_env)
    bundled = (site / "hw" / "synth" / "liberty" / "sky130_fd_sc_hd__tt_025C_1v80.lib.gz").resolve()
    assert bundled.read_bytes() == BUNDLED_LIBERTY.read_bytes()
    stdout = _run([site / "bin" / "lowbit", "synth", "ref_mac", "--width", "4", "--flows", "asic", "--out", out],
                  elsewhere, _user_env(PYTHONPATH=str(site)))
    assert f"liberty: {bundled} (bundled with lowbit)" in stdout.splitlines()
    assert _asic_area(out) > 0
    assert sorted(p.name for p in elsewhere.iterdir()) == []  # nothing written into the working folder
