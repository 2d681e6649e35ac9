"""The README's promises: its two commands are what CI runs, and its Python example works."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def _blocks(lang):
    return re.findall(rf"```{lang}\n(.*?)```", README, re.S)


def test_ci_runs_the_two_readme_commands():
    install, test = (b.strip() for b in _blocks("sh")[:2])
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert install in ci and test in ci
    assert ci.index(install) < ci.index(test)
    assert any(ln.startswith("python3 -m venv") for ln in ci[:ci.index(install)])


def test_python_example_prints_what_it_says():
    (example,) = _blocks("python")
    out = subprocess.run([sys.executable, "-c", example], capture_output=True, text=True, check=True,
                         cwd=ROOT).stdout
    claimed = re.search(r"# (\[.*\])", example.splitlines()[-1]).group(1)
    assert out.split() == claimed.split()
