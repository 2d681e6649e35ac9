"""``lowbit sweep`` (hw.sweep): sweep files, the local pool, a real Dask cluster on 127.0.0.1, worker
deaths, resuming, reports. Synthesis points are ``ref_mac`` through the generic flow (about a
second each); training points use the stand-in runners of ``tests/sweep_runners.py``, which pool
and Dask worker processes import through ``PYTHONPATH``."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from hw.cli import main
from hw.synth import config_from_args, find_unit
from hw.synth.config import scripts_dir
from hw.sweep import runners
from hw.sweep.execute import Progress, _take, run_sweep
from hw.sweep.pool import LocalPool
from hw.sweep.report import pareto_front, write_sweep
from hw.sweep.spec import load_sweep
from hw.sweep.task import Task, run_task

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent


@pytest.fixture
def test_runners(monkeypatch):
    """The stand-in runners, registered here and importable in every worker process."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")])))
    monkeypatch.setattr(runners, "_REGISTERED", {})
    for name in ("score", "die_once", "always_die", "broken"):
        runners.register_runner(name.replace("_", "-"), f"sweep_runners:{name}")
    monkeypatch.syspath_prepend(str(TESTS))


def write(path, text):
    Path(path).write_text(text)
    return Path(path)


def one_error_line(capsys, argv):
    status = main(argv)
    out, err = capsys.readouterr()
    assert status == 2, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("lowbit: error: ") and "Traceback" not in err, err
    return lines[0]


# ---- sweep files -------------------------------------------------------------------------------------

GRID = """
flows = ["generic"]
[[configs]]
unit = "ref_mac"
params = { width = [3, 4, 5], stages = [0, 1], op = "mac" }
exclude = [{ width = 5, stages = 1 }]

[[configs]]
id = "add_w{width}"
unit = "ref_mac"
label = "add, width {width}"
params = { width = [4, 6], op = "add" }
"""


def test_grid_expands_as_a_product_less_the_excluded_points(tmp_path):
    sweep = load_sweep(write(tmp_path / "s.toml", GRID))
    unit = find_unit("ref_mac")
    grid = [(w, s) for w in (3, 4, 5) for s in (0, 1) if (w, s) != (5, 1)]
    expected = [config_from_args(unit, {"width": w, "stages": s, "op": "mac"}).id for w, s in grid]
    assert [p.id for p in sweep.points] == expected + ["add_w4", "add_w6"]
    assert sweep.points[0].config.label == "--width 3 --stages 0 --op mac"  # as lowbit synth labels it
    assert sweep.points[-1].config.label == "add, width 6"
    assert all(p.flows == ("generic",) for p in sweep.points)
    assert sweep.name == "s" and sweep.set == "configs" and sweep.baseline is None


def test_json_sweep_files_are_read_like_toml(tmp_path):
    data = {"flows": ["generic"], "configs": [
        {"unit": "ref_mac", "params": {"width": [3, 4, 5], "stages": [0, 1], "op": "mac"},
         "exclude": [{"width": 5, "stages": 1}]},
        {"id": "add_w{width}", "unit": "ref_mac", "label": "add, width {width}",
         "params": {"width": [4, 6], "op": "add"}}]}
    toml = load_sweep(write(tmp_path / "s.toml", GRID))
    from_json = load_sweep(write(tmp_path / "s.json", json.dumps(data)))
    assert from_json.points == toml.points


def test_exclude_rules_compare_parsed_values_and_ints_lists_are_one_value(tmp_path):
    text = """
[[configs]]
unit = "fp8_fma"
params = { a_format = ["e5m2", "e4m3:fn"], stages = [0, 1] }
exclude = [{ a_format = "fp8_e5m2", stages = [1] }]

[[configs]]
unit = "stochastic_round"
params = { lfsr_taps = [16, 14, 13, 11] }

[[configs]]
unit = "stochastic_round"
params = { lfsr_taps = [[16, 15, 13, 4], "16,15,12,10"] }
"""
    points = load_sweep(write(tmp_path / "s.toml", text)).points
    fma = [p.config.resolved for p in points if p.config.unit.name == "fp8_fma"]
    assert [(r["a_format"], r["stages"]) for r in fma] == [("e5m2", 0), ("e4m3:fn", 0), ("e4m3:fn", 1)]
    taps = [p.config.resolved["lfsr_taps"] for p in points if p.config.unit.name == "stochastic_round"]
    assert taps == [[16, 14, 13, 11], [16, 15, 13, 4], [16, 15, 12, 10]]


def test_the_default_matrix_is_a_sweep_file_with_its_ids_smoke_set_and_baseline():
    matrix = scripts_dir() / "matrix.toml"
    main_set, smoke = load_sweep(matrix), load_sweep(matrix, "smoke")
    ids = [p.id for p in main_set.points]
    assert len(ids) == len(set(ids)) >= 18 and ids[0] == "fp8_e5m2_fma" and "accumulator_mac4_l8" in ids
    assert main_set.baseline == "fp16_fma" in ids
    assert [p.id for p in smoke.points] == ["smoke_ref_mac4"]
    assert all(p.flows == ("generic", "asic", "ice40", "ecp5") for p in main_set.points + smoke.points)
    assert set(main_set.sets) == {"configs", "smoke"}


BAD_FILES = [
    ("unknown_unit.toml", '[[configs]]\nunit = "fp7_fma"\n', "unknown unit 'fp7_fma'"),
    ("unknown_param.toml", '[[configs]]\nunit = "ref_mac"\nparams = { widht = 4 }\n', "unknown parameter '--widht'"),
    ("empty_grid.toml", '[[configs]]\nunit = "ref_mac"\nparams = { width = [] }\n', "width = [] is an empty grid"),
    ("malformed.toml", '[[configs]\nunit = "ref_mac"\n', "not valid TOML"),
    ("malformed.json", '{"configs": [}', "not valid JSON"),
    ("bad_value.toml", '[[configs]]\nunit = "ref_mac"\nparams = { op = "mul" }\n', "--op: expected one of mac, add"),
    ("unknown_key.toml", 'flow = ["asic"]\n[[configs]]\nunit = "ref_mac"\n', "unknown key 'flow'"),
    ("unknown_flow.toml", 'flows = ["vivado"]\n[[configs]]\nunit = "ref_mac"\n', "unknown flow 'vivado'"),
    ("no_configs.toml", 'flows = ["asic"]\n', "no [[configs]] entries"),
    ("excluded.toml", '[[configs]]\nunit = "ref_mac"\nparams = { width = [3] }\nexclude = [{ width = 3 }]\n',
     "every point of the grid is excluded"),
    ("stray_rule.toml", '[[configs]]\nunit = "ref_mac"\nparams = { width = [3, 4] }\nexclude = [{ width = 5 }]\n',
     "exclude rule 1 matches no point"),
    ("twice.toml", '[[configs]]\nunit = "ref_mac"\n[[configs]]\nunit = "ref_mac"\nparams = { width = 8 }\n',
     "is also entry 1's"),
    ("one_id.toml", '[[configs]]\nid = "x"\nunit = "ref_mac"\nparams = { width = [3, 4] }\n', "names 2 points"),
    ("runner.toml", '[[configs]]\nunit = "ref_mac"\ntrain = { recipe = "r", model = "m", runner = "nope" }\n',
     "unknown training runner 'nope'"),
    ("baseline.toml", 'baseline = "zzz"\n[[configs]]\nunit = "ref_mac"\n', "baseline 'zzz' is not a point id"),
]


@pytest.mark.parametrize("name, text, message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_a_bad_sweep_file_is_one_line_and_exit_2_before_any_work(name, text, message, tmp_path, capsys):
    path = write(tmp_path / name, text)
    out = tmp_path / "out"
    line = one_error_line(capsys, ["sweep", str(path), "-o", str(out)])
    assert message in line and str(path) in line
    assert not out.exists()  # nothing started, nothing written


@pytest.mark.parametrize("argv, message", [
    ([], "sweep needs a sweep file"),
    (["{file}", "--scheduler", "localhost:8786"], "--scheduler: expected tcp://HOST:PORT"),
    (["{file}", "--scheduler", "tcp://127.0.0.1:8786", "-j", "2"], "-j sets the local pool's size"),
    (["{file}", "-j", "0"], "--jobs: expected a positive integer"),
    (["{file}", "--flows", "asic,foo"], "--flows"),
    (["{file}", "--set", "smoke"], "no set 'smoke'"),
    (["{file}", "--bogus"], "unknown option '--bogus'"),
    (["{missing}"], "cannot read sweep file"),
])
def test_bad_sweep_options_are_one_line(argv, message, tmp_path, capsys):
    path = write(tmp_path / "ok.toml", '[[configs]]\nunit = "ref_mac"\n')
    argv = [a.format(file=path, missing=tmp_path / "none.toml") for a in argv]
    out = tmp_path / "out"
    assert message in one_error_line(capsys, ["sweep", *argv, "-o", str(out)])
    assert not out.exists()


def test_an_unreachable_scheduler_is_one_line(tmp_path, capsys):
    pytest.importorskip("distributed")
    import socket
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = write(tmp_path / "ok.toml", '[[configs]]\nunit = "ref_mac"\nflows = ["generic"]\n')
    line = one_error_line(capsys, ["sweep", str(path), "--scheduler", f"tcp://127.0.0.1:{port}",
                                   "-o", str(tmp_path / "out")])
    assert f"cannot reach the Dask scheduler at tcp://127.0.0.1:{port}" in line
    assert not (tmp_path / "out" / "sweep.json").exists()


def test_the_readme_sweep_file_is_valid(tmp_path):
    import re
    (example,) = re.findall(r"```toml\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    sweep = load_sweep(write(tmp_path / "my-sweep.toml", example))
    ids = [p.id for p in sweep.points]
    assert len(ids) == 10 and "fp16_fma" in ids and sweep.baseline == "fp16_fma"
    labels = [p.config.label for p in sweep.points[:6]]
    assert "FMA e4m3:fn + e6m9, 2 stages" in labels and "FMA e5m2 + fp16, 2 stages" not in labels


# ---- results, frontiers, progress ---------------------------------------------------------------------

def test_pareto_front_keeps_the_points_no_other_beats_on_both_axes():
    items = [{"id": "a", "x": 1, "y": 9}, {"id": "b", "x": 2, "y": 5}, {"id": "c", "x": 3, "y": 6},
             {"id": "d", "x": 4, "y": 1}, {"id": "e", "x": 2, "y": 5.5}, {"id": "f", "x": None, "y": 0}]
    assert pareto_front(items, "x", "y") == ["a", "b", "d"]
    assert pareto_front(items, "x", "y", maximize_y=True) == ["a"]
    acc = [{"id": "p", "x": 10, "y": 0.90}, {"id": "q", "x": 20, "y": 0.95}, {"id": "r", "x": 30, "y": 0.94}]
    assert pareto_front(acc, "x", "y", maximize_y=True) == ["p", "q"]


class _Stream:
    def __init__(self, tty):
        self.text, self._tty = "", tty

    def write(self, text):
        self.text += text

    def flush(self):
        pass

    def isatty(self):
        return self._tty


def _outcome(pid, status, reason="", seconds=1.0):
    from types import SimpleNamespace
    return SimpleNamespace(point=SimpleNamespace(id=pid), status=status, reason=reason, seconds=seconds)


def test_progress_is_one_updating_line_on_a_terminal_and_plain_lines_otherwise():
    for tty in (True, False):
        stream = _Stream(tty)
        meter = Progress(3, 3, stream)
        meter.task_finished(ran=False)
        meter.point_finished(_outcome("a", "cached"))
        meter.task_finished(ran=True)
        meter.point_finished(_outcome("b", "failed", "asic: yosys failed"))
        meter.task_finished(ran=True)
        meter.point_finished(_outcome("c", "done"))
        meter.close()
        if tty:
            assert stream.text.count("\n") == 2  # the failure line, and the end of the status line
            assert stream.text.endswith("3/3 points: 1 done, 1 failed, 1 cached, ETA 0s\n")
            assert "\r\033[K[2/3] b: failed: asic: yosys failed\n" in stream.text
        else:
            lines = stream.text.splitlines()
            assert lines[0] == "[1/3] a: cached (ETA ?)"  # nothing has run yet: no estimate
            assert lines[1].startswith("[2/3] b: failed: asic: yosys failed (ETA ")
            assert lines[2] == "[3/3] c: done in 1.0 s (ETA 0s)" and len(lines) == 3
            assert "\r" not in stream.text


def test_the_eta_counts_down_between_points(monkeypatch):
    import hw.sweep.execute as execute
    clock = [100.0]
    monkeypatch.setattr(execute.time, "monotonic", lambda: clock[0])
    stream = _Stream(True)
    meter = Progress(3, 3, stream)
    assert meter.eta() == "?"
    clock[0] = 110.0
    meter.task_finished(ran=True)  # 10 s per task so far, 2 tasks left
    assert meter.eta() == "20s"
    clock[0] = 115.0
    meter.tick()
    assert stream.text.endswith("0/3 points: 0 done, 0 failed, 0 cached, ETA 15s")
    clock[0] = 200.0
    assert meter.eta() == "0s"  # late: never negative
    meter.task_finished(ran=False)  # a cached task moves nothing
    assert meter.eta() == "0s" and meter.ran == 1


# ---- training points (stand-in runners, no tools) -------------------------------------------------------

def _training_sweep(tmp_path, runner, extra="", widths=(3, 4, 5)):
    return write(tmp_path / "train.toml", f"""
flows = []
train = {{ recipe = "r1", model = "m1", runner = "{runner}" {extra} }}
[[configs]]
unit = "ref_mac"
params = {{ width = {list(widths)} }}
""")


def test_training_points_run_their_runner_and_plot_accuracy_against_area(tmp_path, test_runners):
    sweep = load_sweep(_training_sweep(tmp_path, "score"))
    run = run_sweep(sweep.points, tmp_path / "out", LocalPool(2), progress=False)
    assert [o.status for o in run.outcomes] == ["done"] * 3
    data = write_sweep(sweep, run, tmp_path / "out")
    accuracies = [p["train"]["r1-m1"]["result"]["accuracy"] for p in data["points"]]
    assert accuracies == [0.875, 0.9375, 0.96875]
    stored = json.loads((tmp_path / "out" / sweep.points[0].id / "train-r1-m1" / "result.json").read_text())
    assert stored["result"]["accuracy"] == 0.875 and len(stored["key"]) == 64
    assert "train_r1-m1_accuracy" in (tmp_path / "out" / "sweep.csv").read_text().splitlines()[0]
    # No asic flow: no area per MAC, so no accuracy frontier and no plot; the Markdown says why.
    assert data["frontier"] == {"area_delay": [], "accuracy_area_per_mac": {"r1-m1": []}}
    markdown = (tmp_path / "out" / "sweep.md").read_text()
    assert "No accuracy plot: no point has both an accuracy and an ASIC area per MAC." in markdown
    assert not list((tmp_path / "out").glob("*.png"))
    again = run_sweep(sweep.points, tmp_path / "out", LocalPool(1), progress=False)
    assert [o.status for o in again.outcomes] == ["cached"] * 3


def test_accuracy_plot_marks_the_frontier(tmp_path):
    pytest.importorskip("matplotlib")
    from hw.sweep.report import _plots
    points = [{"id": i, "flows": {"asic": {"area_um2": a, "delay_ns": d}}, "area_per_mac_um2": a,
               "train": {"t": {"result": {"accuracy": acc}}}} for i, a, d, acc in
              [("p", 10.0, 3.0, 0.90), ("q", 20.0, 2.0, 0.95), ("r", 30.0, 2.5, 0.94)]]
    data = {"points": points, "frontier": {"area_delay": ["p", "q"], "accuracy_area_per_mac": {"t": ["p", "q"]}}}
    notes = _plots(data, tmp_path)
    assert len(notes) == 2
    for name in ("pareto_area_delay.png", "pareto_accuracy_area.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_training_point_without_the_emulation_fails_with_one_line_and_the_sweep_goes_on(tmp_path, test_runners):
    assert runners.target("train") == "train.sweep:run_point"  # where the training emulation plugs in
    runners.register_runner("absent", "lowbit_no_such_training_pkg.sweep:run_point")
    path = write(tmp_path / "s.toml", """
flows = []
[[configs]]
unit = "ref_mac"
params = { width = [3, 4] }
train = { recipe = "r1", model = "m1", runner = "absent" }
[[configs]]
unit = "ref_mac"
params = { width = 5 }
train = { recipe = "r1", model = "m1", runner = "score" }
[[configs]]
unit = "ref_mac"
params = { width = 6 }
train = { recipe = "r1", model = "m1", runner = "broken" }
""")
    sweep = load_sweep(path)
    run = run_sweep(sweep.points, tmp_path / "out", LocalPool(2), progress=False)
    assert [o.status for o in run.outcomes] == ["failed", "failed", "done", "failed"]
    assert run.outcomes[0].reason == ("train r1-m1: training emulation not installed: "
                                      "lowbit_no_such_training_pkg.sweep:run_point cannot be imported "
                                      "(no module named 'lowbit_no_such_training_pkg')")
    assert run.outcomes[3].reason == "train r1-m1: FloatingPointError: loss is nan at step 12"
    assert not (tmp_path / "out" / sweep.points[0].id / "train-r1-m1" / "result.json").exists()  # failures: not cached


def _dead(pid, wait=10.0):
    """Whether process ``pid`` is gone (or a zombie its parent has not reaped yet), within ``wait`` s."""
    psutil = pytest.importorskip("psutil")
    deadline = time.monotonic() + wait
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)


def test_a_pool_process_that_dies_loses_only_its_point(tmp_path, test_runners):
    flag = tmp_path / "died"
    sweep = load_sweep(_training_sweep(tmp_path, "die-once", f', flag = "{flag}"', widths=(3,)))
    others = load_sweep(_training_sweep(tmp_path, "score", widths=(4, 5, 6, 7))).points
    points = [*others[:2], *sweep.points, *others[2:]]
    pool = LocalPool(2)
    run = run_sweep(points, tmp_path / "out", pool, progress=False)
    assert flag.is_file() and pool.deaths == 1
    assert _dead(int(flag.read_text()))  # that process is gone
    assert [o.point.id for o in run.outcomes] == [p.id for p in points]
    assert [o.status for o in run.outcomes] == ["done"] * 5


def test_a_point_that_kills_every_process_fails_after_three_attempts(tmp_path, test_runners):
    points = [*load_sweep(_training_sweep(tmp_path, "always-die", widths=(3,))).points,
              *load_sweep(_training_sweep(tmp_path, "score", widths=(4,))).points]
    pool = LocalPool(1)
    run = run_sweep(points, tmp_path / "out", pool, progress=False)
    assert pool.deaths == 3
    assert run.outcomes[0].status == "failed"
    assert run.outcomes[0].reason.startswith("its worker process died each of the 3 times it ran")
    assert run.outcomes[1].status == "done"


# ---- synthesis points: local pool, Dask on 127.0.0.1, kills, resume -----------------------------------

SIX = """
flows = ["generic"]
[[configs]]
unit = "ref_mac"
params = { width = [3, 4, 5], stages = [0, 1] }
"""


def _results(out):
    """``{point/job: bytes of result.json}`` under ``out``."""
    return {str(p.parent.relative_to(out)): p.read_bytes() for p in sorted(Path(out).glob("*/*/result.json"))}


def _listening(process):
    """The addresses ``process`` listens on (TCP)."""
    return {c.laddr.ip for c in process.net_connections(kind="inet") if c.status == "LISTEN"}


@pytest.fixture
def cluster():
    """A Dask scheduler and two single-threaded worker processes on 127.0.0.1 over TCP.

    Its HTTP endpoints go to a random loopback port (8787 may belong to another cluster here)."""
    distributed = pytest.importorskip("distributed")
    psutil = pytest.importorskip("psutil")  # a dependency of distributed
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  protocol="tcp", dashboard_address="127.0.0.1:0") as local:
        assert local.scheduler_address.startswith("tcp://127.0.0.1:")
        me = psutil.Process()
        addresses = set().union(*(_listening(p) for p in [me, *me.children(recursive=True)]))
        assert addresses == {"127.0.0.1"}  # scheduler and workers listen on loopback only
        yield local


#: Six points, two of them through the asic flow too (so the workers get the liberty).
SIX_MIXED = """
flows = ["generic"]
[[configs]]
unit = "ref_mac"
params = { width = [3, 4], stages = [0, 1] }
[[configs]]
unit = "ref_mac"
params = { width = [3, 4], op = "add" }
flows = ["generic", "asic"]
"""


@pytest.mark.synth
def test_a_dask_cluster_gives_the_local_pools_results_and_shares_its_cache(tmp_path, cluster, capsys):
    path = write(tmp_path / "six.toml", SIX_MIXED)
    local, remote = tmp_path / "local", tmp_path / "dask"
    assert main(["sweep", str(path), "-j", "2", "-o", str(local)]) == 0
    assert main(["sweep", str(path), "--scheduler", cluster.scheduler_address, "-o", str(remote)]) == 0
    out = capsys.readouterr().out
    assert f"on a Dask scheduler {cluster.scheduler_address} (2 workers" in out
    assert "sweep: 6 done, 0 cached, 0 failed" in out
    a, b = (json.loads((d / "sweep.json").read_text()) for d in (local, remote))
    assert len(a["points"]) == 6 and a["points"] == b["points"] and a["versions"] == b["versions"]
    assert _results(local) == _results(remote) and len(_results(local)) == 8  # same results, same keys
    assert sum(p["flows"].get("asic", {}).get("area_um2", 0) > 0 for p in b["points"]) == 2
    # Nothing of the workers' scratch folders leaks into results or messages.
    assert "lowbit-point-" not in (remote / "sweep.json").read_text()
    # The cluster's results are the local pool's cache, and the other way round.
    assert main(["sweep", str(path), "-j", "2", "-o", str(remote)]) == 0
    assert main(["sweep", str(path), "--scheduler", cluster.scheduler_address, "-o", str(local)]) == 0
    assert capsys.readouterr().out.count("sweep: 0 done, 6 cached, 0 failed") == 2


@pytest.mark.synth
def test_a_dask_worker_killed_while_holding_a_point_is_replaced_and_every_point_comes_once(
        tmp_path, cluster, test_runners):
    from distributed import Client
    flag = tmp_path / "died"
    path = write(tmp_path / "kill.toml", SIX + f"""
[[configs]]
unit = "ref_mac"
params = {{ width = 6 }}
train = {{ recipe = "r1", model = "m1", runner = "die-once", flag = "{flag}" }}
""")
    sweep = load_sweep(path)
    with Client(cluster.scheduler_address, set_as_default=False) as client:
        from hw.sweep.pool import DaskPool
        run = run_sweep(sweep.points, tmp_path / "out", DaskPool(client=client), progress=False)
    assert flag.is_file()
    assert _dead(int(flag.read_text()))  # the worker process that held the point is gone
    assert [o.point.id for o in run.outcomes] == [p.id for p in sweep.points]
    assert [o.status for o in run.outcomes] == ["done"] * 7
    data = write_sweep(sweep, run, tmp_path / "out")
    ids = [p["id"] for p in data["points"]]
    assert len(ids) == len(set(ids)) == 7
    csv_ids = [line.split(",")[0] for line in (tmp_path / "out" / "sweep.csv").read_text().splitlines()[1:]]
    assert csv_ids == ids
    assert data["points"][-1]["train"]["r1-m1"]["result"]["accuracy"] == 0.984375


@pytest.mark.synth
def test_an_interrupted_sweep_resumes_from_the_cache(tmp_path):
    path = write(tmp_path / "six.toml", SIX)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "hw.cli", "sweep", str(path), "-j", "1", "-o", str(out)]
    env = dict(os.environ, PYTHONWARNINGS="error")
    # The interrupt must reach Python's handler: a test run started as a background job of a
    # non-interactive shell ignores SIGINT, and its children inherit that.
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.monotonic() + 120
    while not list(out.glob("*/generic/result.json")) and time.monotonic() < deadline and proc.poll() is None:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, (stdout, stderr)
    assert stderr.strip().endswith("lowbit: interrupted; finished points are kept and a new run resumes from them")
    finished = {p: p.stat().st_mtime_ns for p in out.glob("*/generic/result.json")}
    assert 0 < len(finished) < 6 and not (out / "sweep.json").exists()
    again = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"sweep: {6 - len(finished)} done, {len(finished)} cached, 0 failed" in again.stdout
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # not redone
    assert len(json.loads((out / "sweep.json").read_text())["points"]) == 6


@pytest.mark.synth
def test_a_task_off_the_clients_machine_returns_data_that_names_the_clients_folders(tmp_path, monkeypatch):
    scratch = tmp_path / "worker-tmp"  # this worker's own temporary folder, watched alone
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    made, mkdtemp = [], tempfile.mkdtemp
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: made.append(mkdtemp(*a, **k)) or made[-1])
    config = config_from_args(find_unit("ref_mac"), {"width": 3})
    dest = tmp_path / "client" / config.id
    task = Task(id=config.id, point=config.id, unit="ref_mac", params=config.params, label=config.label,
                flows=("generic",), dest=str(dest), inplace=False)
    result = run_task(task)
    job = result["jobs"]["generic"]
    assert job["status"] == "ok" and job["result"]["nand2_eq"] > 0 and "files" not in job
    assert not dest.exists()  # the worker wrote nothing of the client's
    assert len(made) == 1 and Path(made[0]).parent == scratch and Path(made[0]).name.startswith("lowbit-point-")
    assert not Path(made[0]).exists()  # the point's scratch folder is removed
    # The key the client stores makes the same task come back cached, without running.
    again = run_task(dataclasses.replace(task, known={"generic": job["key"]}))
    assert again["jobs"]["generic"] == {"status": "cached", "key": job["key"], "seconds": 0.0}


def test_a_failed_job_from_a_worker_replaces_the_clients_stale_result_with_its_logs(tmp_path):
    dest = tmp_path / "p" / "asic"
    dest.mkdir(parents=True)
    (dest / "result.json").write_text('{"key": "old", "result": {}}')
    message = f"asic: yosys failed (exit 1): ERROR: x; see {dest / 'asic.log'}"
    job = {"status": "failed", "key": "new", "result": {"error": message}, "errors": [message],
           "files": {"asic.log": "ERROR: x\n", "../escape.log": "no"}}
    taken = _take(job, dest, inplace=False)
    assert sorted(p.name for p in dest.iterdir()) == ["asic.log", "escape.log"]
    assert (dest / "asic.log").read_text() == "ERROR: x\n" and "files" not in taken
    assert not (tmp_path / "p" / "escape.log").exists()
