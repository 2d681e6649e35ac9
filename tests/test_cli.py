"""The ``lowbit`` command: ``list``, ``formats``, ``export`` (file and stdout), user errors, atomic
writes and deterministic output. Mostly in-process through ``hw.cli.main``; a few cases run the
installed console script, so the entry point and the one-line-error contract are checked for real.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from golden.block import BLOCK_PRESETS, parse_block_format
from golden.formats import PRESET_SPECS, PRESETS, parse_format
from hw.cli import main
from hw.units import UNITS, get_unit

#: A configuration that exports quickly (no LFSR, no normalizer): used wherever the unit does not matter.
QUICK = ["stochastic_round", "--source", "fp16", "--target", "fp8_e5m2", "--rounding", "rne"]


def lowbit_command():
    script = Path(sys.executable).with_name("lowbit")
    return [str(script)] if script.exists() else [sys.executable, "-m", "hw.cli"]


def run_script(args, cwd, hashseed="0"):
    env = dict(os.environ, PYTHONHASHSEED=hashseed, PYTHONWARNINGS="error")
    return subprocess.run(lowbit_command() + list(args), cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=120)


def run(capsys, *args):
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def assert_one_error_line(status, out, err):
    assert status == 2
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"expected one stderr line, got {err!r}"
    assert lines[0].startswith("lowbit: error: ")
    assert "Traceback" not in err
    return lines[0][len("lowbit: error: "):]


def files_in(folder):
    return sorted(p.name for p in Path(folder).iterdir())


# -- list and formats ---------------------------------------------------------------------------------

def expected_default_text(default):
    if default is None:
        return "derived"
    if isinstance(default, bool):
        return "true" if default else "false"
    if isinstance(default, tuple):
        return ",".join(str(v) for v in default)
    return str(default)


def test_list_shows_every_unit_and_parameter_with_its_default(capsys):
    status, out, err = run(capsys, "list")
    assert status == 0 and err == ""
    # Split the listing into one section per unit (a section starts with "<unit>: <summary>").
    sections, current = {}, None
    for line in out.splitlines():
        if line and not line.startswith(" "):
            current, _, summary = line.partition(": ")
            sections[current] = {"summary": summary, "lines": []}
        else:
            sections[current]["lines"].append(line.strip())
    assert list(sections) == list(UNITS)
    for name, unit in UNITS.items():
        assert sections[name]["summary"] == unit.summary
        lines = sections[name]["lines"]
        assert len(lines) == len(unit.params)
        for line, p in zip(lines, unit.params):
            flag = "--" + p.name.replace("_", "-")
            words = line.split()
            assert words[0] == flag
            assert words[1:3] == ["default", expected_default_text(p.default)], line
            for choice in p.choices:
                assert choice in line


def test_formats_lists_every_preset_with_an_equivalent_spec(capsys):
    status, out, err = run(capsys, "formats")
    assert status == 0 and err == ""
    listed, block_listed, section = {}, {}, None
    for line in out.splitlines():
        if not line.startswith(" "):
            section = line.split(" (")[0].rstrip(":")
        m = re.match(r"^\s+(\w+)\s+=\s+(\S+)", line)
        if m:
            {"presets": listed, "block presets": block_listed}[section][m.group(1)] = m.group(2)
    assert set(listed) == set(PRESET_SPECS)
    for name, spec in listed.items():
        assert parse_format(spec) == PRESETS[name], name
    assert set(block_listed) == set(BLOCK_PRESETS)
    for name, spec in block_listed.items():
        assert parse_block_format(spec) == BLOCK_PRESETS[name], name
    for syntax in ("e<E>m<M>", ":bias=N", ":nosub", ":fn", ":finite", "fix<W>.<F>", "ufix<W>.<F>", "int<N>",
                   "mx:<element spec>[/k]", "hbfp<m>[/k]", "k from 2 to 64"):
        assert syntax in out


def test_formats_checks_the_given_specs(capsys):
    status, out, err = run(capsys, "formats", "mxfp8_e4m3/16", "MX:fp8_e5m2", "hbfp6", "fp8_e4m3", "e6m9:nosub:fn")
    assert status == 0 and err == ""
    assert out.splitlines() == ["mxfp8_e4m3/16 = mx:e4m3:fn/16", "MX:fp8_e5m2 = mx:e5m2/32", "hbfp6 = hbfp6/32",
                                "fp8_e4m3 = e4m3:fn", "e6m9:nosub:fn = e6m9:nosub:fn"]


def test_help_and_version(capsys):
    status, out, err = run(capsys, "--help")
    assert status == 0 and err == ""
    for cmd in ("list", "formats", "export", "synth"):
        assert cmd in out
    status, out, err = run(capsys, "--version")
    assert status == 0 and re.fullmatch(r"lowbit \d+\.\d+\.\d+\S*\n", out)
    status, out, err = run(capsys, "export", "--help")
    assert status == 0 and "lowbit export UNIT" in out



@pytest.mark.parametrize("command", ["export", "synth"])
@pytest.mark.parametrize("flag", ["--help", "-h"])
def test_unit_help_lists_that_units_parameters(capsys, tmp_path, monkeypatch, command, flag):
    monkeypatch.chdir(tmp_path)
    for unit in UNITS.values():
        status, out, err = run(capsys, command, unit.name, "--stages", "1", flag)
        assert status == 0 and err == "", (unit.name, err)
        assert f"{unit.name}: {unit.summary}" in out
        for p in unit.params:
            assert re.search(rf"^  {re.escape(p.flag)} +default ", out, re.M), (unit.name, p.flag)
        others = [u for u in UNITS.values() if u is not unit]
        assert not any(f"{u.name}: {u.summary}" in out for u in others)
    assert files_in(tmp_path) == []  # help writes and builds nothing


# -- export --------------------------------------------------------------------------------------------

def module_names(text):
    return re.findall(r"^\s*module\s+([A-Za-z_][A-Za-z0-9_$]*)", text, flags=re.M)


def test_export_to_stdout(capsys):
    status, out, err = run(capsys, "export", *QUICK)
    assert status == 0 and err == ""
    assert module_names(out) == ["stochastic_round"]
    header = out[:out.index("module")]
    assert "Generated by lowbit" in header.splitlines()[0]
    # The header names the unit and the resolved parameters (defaults included).
    assert re.search(r"stochastic_round.*--source fp16.*--target fp8_e5m2.*--rounding rne", header)
    assert re.search(r"\binput\b[^;,()]*\[15:0\]\s*x\b", out)
    assert re.search(r"\boutput\b[^;,()]*\[7:0\]\s*y\b", out)
    assert out.rstrip().endswith("endmodule")


def test_export_to_file_names_the_module_after_the_stem(capsys, tmp_path):
    target = tmp_path / "my_rounder.v"
    status, out, err = run(capsys, "export", *QUICK, "-o", str(target))
    assert (status, out, err) == (0, "", "")
    text = target.read_text()
    assert module_names(text) == ["my_rounder"]
    assert files_in(tmp_path) == ["my_rounder.v"]          # no temporary file left behind
    # The same text as on stdout, apart from the module name.
    status, stdout_text, _ = run(capsys, "export", *QUICK, "--name", "my_rounder")
    assert status == 0 and stdout_text == text
    # --name wins over the stem; --output is the long form of -o.
    status, _, _ = run(capsys, "export", *QUICK, "--output", str(tmp_path / "other.v"), "--name", "core")
    assert status == 0 and module_names((tmp_path / "other.v").read_text()) == ["core"]


def test_export_replaces_an_existing_file(capsys, tmp_path):
    target = tmp_path / "unit.v"
    target.write_text("old contents\n" * 1000)
    status, _, _ = run(capsys, "export", *QUICK, "-o", str(target))
    assert status == 0
    text = target.read_text()
    assert "old contents" not in text and module_names(text) == ["unit"]
    assert files_in(tmp_path) == ["unit.v"]


def test_exported_file_permissions_follow_umask(capsys, tmp_path):
    old = os.umask(0o022)
    try:
        status, _, _ = run(capsys, "export", *QUICK, "-o", str(tmp_path / "u.v"))
    finally:
        os.umask(old)
    assert status == 0
    assert stat.S_IMODE((tmp_path / "u.v").stat().st_mode) == 0o644


# -- determinism ----------------------------------------------------------------------------------------

ABSOLUTE = ("/work", "/tmp", "/home", "/root", "/usr", "/opt")
TIMESTAMP = re.compile(
    r"\b(19|20)\d\d[-/.](0[1-9]|1[0-2])[-/.](0[1-9]|[12]\d|3[01])\b"        # 2024-05-17
    r"|\b\d{1,2}:\d\d:\d\d\b"                                              # 12:34:56
    r"|\b(Mon|Tue|Wed|Thu|Fri|Sat|Sun)\w*,? +(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r"|\b(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)\w* +\d{1,2},? +(19|20)\d\d\b")


def assert_portable(text, *paths):
    for p in ABSOLUTE + tuple(str(x) for x in paths):
        assert p not in text, f"export contains the path {p!r}"
    m = TIMESTAMP.search(text)
    assert m is None, f"export contains a timestamp-like string {m.group(0)!r}"


def test_timestamp_pattern_catches_dates():
    for s in ("2024-05-17", "on 12:34:56", "Fri, May 17", "May 17, 2024"):
        assert TIMESTAMP.search(s)


@pytest.mark.parametrize("args", [QUICK, ["fp8_fma", "--a-format", "fp8_e4m3", "--stages", "2"]],
                         ids=["sr-quick", "fma-staged"])
def test_export_is_deterministic_across_runs_and_paths(capsys, tmp_path, monkeypatch, args):
    (tmp_path / "a").mkdir()
    (tmp_path / "b" / "deep").mkdir(parents=True)
    monkeypatch.chdir(tmp_path / "a")
    assert run(capsys, "export", *args, "-o", "top.v")[0] == 0
    monkeypatch.chdir(tmp_path / "b")
    assert run(capsys, "export", *args, "-o", str(tmp_path / "b" / "deep" / "top.v"))[0] == 0
    first = (tmp_path / "a" / "top.v").read_bytes()
    assert (tmp_path / "b" / "deep" / "top.v").read_bytes() == first
    assert_portable(first.decode(), tmp_path)
    if args == QUICK:   # another output name changes nothing but the module name
        assert run(capsys, "export", *args, "-o", "deep/other_name.v")[0] == 0
        other = (tmp_path / "b" / "deep" / "other_name.v").read_text()
        assert module_names(other) == ["other_name"]
        assert re.sub(r"\bother_name\b", "top", other).encode() == first


def test_console_script_output_is_identical_across_processes(capsys, tmp_path):
    """Two processes with different hash seeds and working folders, and the in-process export."""
    (tmp_path / "one").mkdir()
    (tmp_path / "two" / "sub").mkdir(parents=True)
    args = ["export", "stochastic_round", "--rand-bits", "6"]
    p1 = run_script(args + ["-o", "sr.v"], cwd=tmp_path / "one", hashseed="1")
    p2 = run_script(args + ["-o", "sub/sr.v"], cwd=tmp_path / "two", hashseed="12345")
    assert (p1.returncode, p1.stdout, p1.stderr) == (0, "", "")
    assert (p2.returncode, p2.stdout, p2.stderr) == (0, "", "")
    a = (tmp_path / "one" / "sr.v").read_bytes()
    assert (tmp_path / "two" / "sub" / "sr.v").read_bytes() == a
    status, out, _ = run(capsys, *args, "--name", "sr")
    assert status == 0 and out.encode() == a
    assert_portable(a.decode(), tmp_path)


# -- user errors -----------------------------------------------------------------------------------------

ERRORS = [
    # (arguments, regular expressions the one error line must match)
    (["export", "nosuch"], [r"unknown unit 'nosuch'", r"stochastic_round", r"fp8_fma"]),
    (["export", "stochastic_round", "--frobnicate", "1"], [r"--frobnicate", r"--rand-bits", r"--seed"]),
    (["export", "stochastic_round", "--rand-bits", "0"], [r"rand[_-]bits", r"between 1 and 32", r"\b0\b"]),
    (["export", "stochastic_round", "--lfsr-width", "0"], [r"lfsr[_-]width", r"between 3 and 32"]),
    (["export", "fp8_fma", "--rounding", "sr", "--rand-bits", "0"], [r"rand[_-]bits", r"between 1 and 32"]),
    (["export", "stochastic_round", "--target", "e4m3:bias=99"], [r"target", r"bias", r"between 0 and 15", r"99"]),
    (["export", "stochastic_round", "--rounding", "rnd"], [r"rounding", r"rne, rna, rtz, sr", r"rnd"]),
    (["export", "stochastic_round", "--rand-source", "dice"], [r"rand[_-]source", r"lfsr", r"port"]),
    (["export", "stochastic_round", "--source", "e4m3x"], [r"source", r"e4m3x", r"fp32", r"e<E>m<M>"]),
    (["export", "fp8_fma", "--acc-format", "e9m2"], [r"acc[_-]format", r"exp_bits", r"between 1 and 8"]),
    (["export", "stochastic_round", "--target", "int8"], [r"target", r"radix-2 float", r"int8"]),
    (["export", "stochastic_round", "--target", "e4m3:bias=x"], [r"target", r"bias", r"integer"]),
    (["export", "stochastic_round", "--seed", "0"], [r"seed", r"nonzero"]),
    (["export", "stochastic_round", "--stages", "99"], [r"stages", r"between 0 and 16"]),
    (["export", "stochastic_round", "--lfsr-taps", "17,3"], [r"lfsr[_-]taps", r"1\.\.16"]),
    (["export", "stochastic_round", "--rand-bits", "x"], [r"--rand-bits", r"integer"]),
    (["export", "stochastic_round", "--rand-bits"], [r"--rand-bits", r"needs a value", r"integer"]),
    (["export", "stochastic_round", "--seed", "--stages", "2"], [r"--seed", r"needs a value"]),
    (["export", "stochastic_round", "--rounding"], [r"--rounding", r"needs a value", r"rne"]),
    (["export", "stochastic_round", "-o"], [r"-o", r"needs a value"]),
    (["export", "stochastic_round", "--rounding", "rne", "--rounding=rtz"], [r"--rounding", r"twice"]),
    (["export", "stochastic_round", "--name", "1abc"], [r"module name", r"Verilog identifier", r"1abc"]),
    # The quantizers (docs/arithmetic.md section 10.7): source, scale width, lanes.
    (["export", "luq", "--source", "int8"], [r"source", r"radix-2 float", r"int8"]),
    (["export", "luq", "--source", "fp4_r4"], [r"source", r"radix-2 float"]),
    (["export", "luq", "--scale-bits", "5"], [r"scale_bits", r"between 6", r"-30 \.\.\. 10", r"fp16", r"\b5\b"]),
    (["export", "luq", "--source", "fp32", "--scale-bits", "8"], [r"scale_bits", r"between 9", r"fp32"]),
    (["export", "luq", "--lanes", "0"], [r"lanes", r"between 1 and 64", r"\b0\b"]),
    (["export", "luq", "--rounding", "rtz"], [r"rounding", r"sr, rne", r"rtz"]),
    (["export", "tpr_quantize", "--source", "uint8"], [r"source", r"radix-2 float", r"uint8"]),
    (["export", "tpr_quantize", "--lanes", "0"], [r"lanes", r"between 1 and 64"]),
    (["export", "amax", "--lanes", "0"], [r"lanes", r"between 1 and 64"]),
    (["export", "amax", "--source", "fix8.4"], [r"source", r"radix-2 float"]),
    (["export", "amax", "--stages", "5"], [r"stages", r"between 0 and 4"]),
    (["export", "stochastic_round", "positional"], [r"positional", r"--name value"]),
    (["export"], [r"unit name", r"lowbit list"]),
    (["frobnicate"], [r"unknown command 'frobnicate'", r"export"]),
    (["list", "extra"], [r"list", r"no arguments"]),
    # Block formats (docs/arithmetic.md section 9): checked by lowbit formats SPEC; nothing printed.
    (["formats", "mxfp8_e4m3", "mxint8/65"], [r"mxint8/65", r"block size k", r"between 2 and 64", r"65"]),
    (["formats", "mx:fp4_r4/32"], [r"mx:fp4_r4/32", r"radix-4"]),
    (["formats", "mx:e5m10"], [r"e5m10", r"16 bits", r"at most 8"]),
    (["formats", "mx:int8"], [r"mx:int8", r"fix<W>.<F>", r"fix8.6"]),
    (["formats", "hbfp20"], [r"hbfp20", r"HBFP mantissa bits", r"between 2 and 16"]),
    (["formats", "e4m3:wat"], [r"e4m3:wat", r"unknown format modifier"]),
    # Block units: the block size, the lanes, element formats the scale rule cannot serve.
    (["export", "block_dot", "--block", "65"], [r"block", r"between 2 and 64", r"65"]),
    (["export", "block_dot", "--a-format", "mxfp4_e2m1/66"], [r"a[_-]format", r"block size k", r"between 2 and 64"]),
    (["export", "block_dot", "--a-format", "mxfp4_e2m1", "--lanes", "12"], [r"k=32", r"multiple of lanes=12"]),
    (["export", "block_dot", "--lanes", "0"], [r"lanes", r"between 1 and 64", r"\b0\b"]),
    (["export", "block_dot", "--a-format", "fp4_r4", "--block", "16"], [r"a[_-]format", r"radix-4"]),
    (["export", "block_dot", "--a-format", "mx:fp4_r4/32"], [r"a[_-]format", r"radix-4"]),
    (["export", "block_dot", "--a-format", "int8"], [r"a[_-]format", r"fix<W>.<F>"]),
    (["export", "block_dot", "--a-format", "e5m10"], [r"a[_-]format", r"16 bits", r"at most 8"]),
    (["export", "block_dot", "--a-format", "ufix8.6"], [r"a[_-]format", r"unsigned"]),
    (["export", "block_dot", "--a-format", "mxfp4_e2m1/16", "--block", "8"], [r"a_format", r"16", r"block is 8"]),
    (["export", "block_dot", "--a-format", "mxfp4_e2m1/16", "--b-format", "hbfp8"],
     [r"same block size", r"16", r"32"]),
    (["export", "block_dot", "--acc-format", "mxint8"], [r"acc[_-]format", r"mxint8"]),
    (["export", "block_quantize", "--format", "mx:fp4_r4/32"], [r"format", r"radix-4"]),
    (["export", "block_quantize", "--format", "hbfp8", "--block", "1"], [r"block", r"between 2 and 64"]),
    (["export", "block_quantize", "--source", "fp16"], [r"source", r"fp32, bf16", r"fp16"]),
    (["export", "accumulator", "--front", "block", "--a-format", "mxfp4_e2m1", "--lanes", "8"],
     [r"lanes", r"block size k=32", r"\b8\b"]),
    (["export", "accumulator", "--front", "block"], [r"a_format", r"block format", r"fp8_e5m2"]),
    (["export", "accumulator", "--a-format", "mxfp8_e4m3"], [r"a_format", r"block format", r"front block"]),
    ([], [r"missing command", r"export"]),
]


@pytest.mark.parametrize("args, patterns", ERRORS, ids=[" ".join(a) or "no-command" for a, _ in ERRORS])
def test_user_errors_print_one_line_and_exit_2(capsys, args, patterns):
    msg = assert_one_error_line(*run(capsys, *args))
    for pat in patterns:
        assert re.search(pat, msg), f"{pat!r} not in {msg!r}"


@pytest.mark.parametrize("make_out, patterns", [
    (lambda d: d / "missing" / "x.v", [r"-o", r"output folder", r"missing", r"does not exist"]),
    (lambda d: d, [r"-o", r"folder", r"file name"]),
    (lambda d: "", [r"-o", r"file name"]),
    (lambda d: str(d / "sub") + "/", [r"-o", r"file name"]),
], ids=["no-folder", "is-folder", "empty", "trailing-slash"])
def test_bad_output_paths(capsys, tmp_path, make_out, patterns):
    before = files_in(tmp_path)
    msg = assert_one_error_line(*run(capsys, "export", *QUICK, "-o", str(make_out(tmp_path))))
    for pat in patterns:
        assert re.search(pat, msg), f"{pat!r} not in {msg!r}"
    assert files_in(tmp_path) == before


def test_failed_export_leaves_the_output_folder_untouched(capsys, tmp_path):
    old = tmp_path / "sr.v"
    old.write_text("previous\n")
    for bad in (["--rand-bits", "0"], ["--target", "e4m3:bias=99"], ["--name", "9lives"],
                ["--lfsr-taps", "16,3"]):
        assert_one_error_line(*run(capsys, "export", "stochastic_round", *bad, "-o", str(old)))
        assert files_in(tmp_path) == ["sr.v"]
        assert old.read_text() == "previous\n"


def test_write_failure_is_one_line_and_leaves_no_temporary_file(capsys, tmp_path, monkeypatch):
    import hw.export

    def refuse(src, dst):
        raise PermissionError(13, "Permission denied")

    old = tmp_path / "sr.v"
    old.write_text("previous\n")
    monkeypatch.setattr(hw.export.os, "replace", refuse)
    msg = assert_one_error_line(*run(capsys, "export", *QUICK, "-o", str(old)))
    assert "cannot write" in msg and "Permission denied" in msg
    assert files_in(tmp_path) == ["sr.v"]
    assert old.read_text() == "previous\n"


def test_python_api_raises_the_same_message(capsys):
    unit = get_unit("stochastic_round")
    for kwargs, flags in [
        (dict(rand_bits=0), ["--rand-bits", "0"]),
        (dict(lfsr_width=0), ["--lfsr-width", "0"]),
        (dict(seed=0), ["--seed", "0"]),
        (dict(stages=99), ["--stages", "99"]),
        (dict(target="int8"), ["--target", "int8"]),
        (dict(lfsr_taps=(17, 3)), ["--lfsr-taps", "17,3"]),
    ]:
        with pytest.raises(ValueError) as info:
            unit.build(**kwargs)
        api = str(info.value)
        assert "\n" not in api
        cli = assert_one_error_line(*run(capsys, "export", "stochastic_round", *flags))
        assert cli == api
    with pytest.raises(ValueError, match=r"unknown unit 'nosuch'.*stochastic_round"):
        get_unit("nosuch")
    with pytest.raises(ValueError, match=r"'--frobnicate'.*--rand-bits"):
        unit.build(frobnicate=1)
    with pytest.raises(ValueError, match=r"rounding.*rne, rna, rtz, sr.*'rnd'"):
        unit.build(rounding="rnd")
    with pytest.raises(ValueError, match=r"between 1 and 32"):
        get_unit("fp8_fma").build(rounding="sr", rand_bits=0)


def test_python_api_format_errors_name_the_parameter():
    unit = get_unit("stochastic_round")
    for kwargs, name in [(dict(target="e4m3:bias=99"), "target"), (dict(source="e4m3x"), "source")]:
        with pytest.raises(ValueError) as info:
            unit.build(**kwargs)
        assert name in str(info.value)
    with pytest.raises(ValueError, match="a_format"):
        get_unit("fp8_fma").build(a_format="e9m2")


@pytest.mark.parametrize("source, target", [("fp16", "fp32"), ("ufix1.0", "e5m2")])
def test_widening_conversions_export(capsys, source, target):
    status, out, err = run(capsys, "export", "stochastic_round", "--source", source, "--target", target,
                           "--rounding", "rne")
    assert status == 0 and err == "" and "module stochastic_round" in out


# -- the installed console script --------------------------------------------------------------------

def test_console_script_list_and_errors(tmp_path):
    p = run_script(["list"], cwd=tmp_path)
    assert p.returncode == 0 and p.stderr == ""
    assert all(f"{name}: " in p.stdout for name in UNITS)
    for args in (["export", "stochastic_round", "--rand-bits", "0"],
                 ["export", "stochastic_round", "--target", "e4m3:bias=99"],
                 ["export", "stochastic_round", "--lfsr-taps", "16,3", "-o", "x.v"]):
        p = run_script(args, cwd=tmp_path)
        assert_one_error_line(p.returncode, p.stdout, p.stderr)
    assert files_in(tmp_path) == []


def test_console_script_survives_a_closed_pipe(tmp_path):
    proc = subprocess.Popen(lowbit_command() + ["export"] + QUICK, cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=dict(os.environ, PYTHONWARNINGS="error"))
    proc.stdout.close()              # the reader goes away before anything is written
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0
    assert err == b""


def test_module_entry_point(tmp_path):
    env = dict(os.environ, PYTHONWARNINGS="error")
    p = subprocess.run([sys.executable, "-m", "hw.cli", "formats"], cwd=tmp_path, env=env, capture_output=True,
                       text=True, timeout=60)
    assert p.returncode == 0 and p.stderr == "" and "fp8_e5m2" in p.stdout
