"""Accumulation width study (Sakr et al. 2019): the swamping model's variance retention ratio, the
Monte Carlo of lowbit's accumulator against it, and the script."""

from __future__ import annotations

import csv
import math
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from golden.studies import (LOST_CUTOFF, _curve, _kept, gaussian_magnitudes, lost_terms, min_mantissa,
                            product_magnitudes, vrr_measured, vrr_model_mc, vrr_theory)

ROOT = Path(__file__).resolve().parents[1]


# -- the model, by hand ---------------------------------------------------------------------------

def test_hand_derived_values_unit_products():
    """Products of magnitude 1 (one value), an accumulator with m_acc = 0 fraction bits. A running
    sum in binade k has last place 2**k: a product survives truncation whole while 2**k <= 1 and is
    lost entirely from 2**k = 2 on, so step i loses P(|s_(i-1)| >= 2), s_(i-1) ~ N(0, i - 1):
    erfc(2 / sqrt(2 (i - 1))). Rounded to nearest, 1 against a last place of 2 is a tie (kept as 0 or
    2: energy 2, i.e. one unit *gained*) and is lost from a last place of 4 on."""
    dist = (np.array([1.0]), np.array([1.0]))
    v = _curve(0, 4, dist, "trunc")
    assert v[1] == 1.0
    assert v[2] == pytest.approx(1 - math.erfc(math.sqrt(2)) / 2, rel=1e-12)
    assert v[3] == pytest.approx(1 - (math.erfc(math.sqrt(2)) + math.erfc(1)) / 3, rel=1e-12)
    r = _curve(0, 2, dist, "rne")
    gained = math.erfc(math.sqrt(2)) - math.erfc(2 * math.sqrt(2))      # P(2 <= |s| < 4)
    lost = math.erfc(2 * math.sqrt(2))                                   # P(|s| >= 4)
    assert r[2] == pytest.approx(1 - (lost - gained) / 2, rel=1e-12)


def test_kept_energy_exact():
    """What truncation / rounding keeps of the exact FP8 product distribution at one alignment,
    recomputed with Fractions (the values are dyadic, the sums exact)."""
    vals, probs = product_magnitudes("e5m2")
    for u in (2.0 ** -3, 0.5, 2.0):
        fu = Fraction(u)
        want_t = sum(Fraction(p) * (int(Fraction(v) / fu) * fu) ** 2 for v, p in zip(vals, probs))
        got_t = np.sum(probs * _kept(vals, u, "trunc") ** 2)
        assert got_t == pytest.approx(float(want_t), rel=1e-12)
        want_r = Fraction(0)
        for v, p in zip(vals, probs):
            q = Fraction(v) / fu
            lo = q.numerator // q.denominator
            d = q - lo
            e2 = (lo * fu) ** 2 if d < Fraction(1, 2) else ((lo + 1) * fu) ** 2 if d > Fraction(1, 2) \
                else ((lo * fu) ** 2 + ((lo + 1) * fu) ** 2) / 2
            want_r += Fraction(p) * e2
        assert np.sum(probs * _kept(vals, u, "rne") ** 2) == pytest.approx(float(want_r), rel=1e-12)


def test_limits():
    ns = np.array([1, 2, 64, 1024, 16384])
    assert vrr_theory(12, 5, 1) == 1.0                               # one product: exact
    assert np.all(vrr_theory(40, 5, ns) == 1.0)                      # last place below every bit
    for products in ("gaussian", "e5m2"):
        lost = np.array([lost_terms(vrr_theory(M, 5, ns, products=products), ns)
                         for M in range(4, 17)])
        assert np.all(np.diff(lost, axis=0) <= 1e-12)                # wider mantissa, less loss
        assert np.all(np.diff(lost, axis=1) >= -1e-12)               # longer sum, more loss
        assert lost[-1, -1] < 0.02 and lost[0, -1] > 1000            # M = 16 vs M = 4, n = 16384
        assert np.all((vrr_theory(6, 5, ns, products=products) > 0)
                      & (vrr_theory(6, 5, ns, products=products) <= 1))


def test_chunking_composition():
    """Chunks: the inner ratio times the outer one; no change up to one chunk; with few mantissa bits
    chunking keeps more variance (the paper's point)."""
    assert vrr_theory(8, 5, 64, chunk=64) == vrr_theory(8, 5, 64)
    assert vrr_theory(8, 5, 32, chunk=64) == vrr_theory(8, 5, 32)
    assert lost_terms(vrr_theory(6, 5, 4096, chunk=64), 4096) < \
        0.5 * lost_terms(vrr_theory(6, 5, 4096), 4096)
    with pytest.raises(ValueError):
        vrr_theory(8, 5, 100, chunk=64)
    with pytest.raises(ValueError):
        vrr_theory(8, 4, 64, products="e5m2")                        # e5m2 products have 5 bits


def test_two_chunks_by_hand():
    """n = 2 CL: the inner ratio VRR(CL), times the outer accumulation of two chunk sums (Gaussian,
    variance CL VRR(CL), on the 6-bit grid): its second step loses, per binade k of the first chunk
    sum, what truncation to 2**(k - 6) takes from the second; summed here in plain Python."""
    M, CL = 6, 64
    inner = vrr_theory(M, 5, CL)
    pv, pp = gaussian_magnitudes(5)                    # the products: N(0, 1) on a 5-bit grid
    sigma = math.sqrt(CL * inner * sum(p * v * v for v, p in zip(pv, pp)))
    vals, probs = gaussian_magnitudes(M, sigma=sigma)
    var = sum(p * v * v for v, p in zip(vals, probs))   # the first chunk sum's variance (grid incl.)
    sd = math.sqrt(var)
    lost = 0.0
    for k in range(-50, 20):
        pk = math.erfc(2.0 ** k / (sd * math.sqrt(2))) - math.erfc(2.0 ** (k + 1) / (sd * math.sqrt(2)))
        u = 2.0 ** (k - M)
        kept = sum(p * (u * math.floor(v / u)) ** 2 for v, p in zip(vals, probs))
        lost += pk * (var - kept) / var
    want = inner * (1 - lost / 2)
    assert vrr_theory(M, 5, 2 * CL, chunk=CL) == pytest.approx(want, rel=1e-9)
    assert vrr_theory(M, 5, 2 * CL, chunk=CL) < inner


def test_min_mantissa():
    assert min_mantissa({6: 10.0, 7: 3.0, 8: 5.0, 9: 1.0}) == 9      # from 9 on, not 7
    assert min_mantissa({6: 1.0, 7: 0.5}) == 6
    assert min_mantissa({6: 9.0, 7: 8.0}) is None
    assert LOST_CUTOFF == pytest.approx(math.log(50))


# -- Monte Carlo ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rounding", ["trunc", "rne"])
def test_theory_matches_a_simulation_of_its_model(rounding):
    """The model simulated literally (Gaussian products on a 5-bit grid, each aligned to the running
    sum's last place) against its evaluation, which treats steps as independent and the running sum
    as the ideal Gaussian: within 3.5 standard errors of the simulation (seeded)."""
    vrr, se = vrr_model_mc(8, 5, 1024, trials=4096, seed=1, rounding=rounding)
    assert abs(vrr - vrr_theory(8, 5, 1024, rounding=rounding)) < 3.5 * se


def _measured(M, n, chunk, rounding, trials=2048, seed=3):
    (row,) = vrr_measured([M], [n], chunks=(chunk,), trials=trials, seed=seed, rounding=rounding)
    return row


def test_accumulator_agrees_where_nothing_swamps():
    """14 mantissa bits, 256 products: the model loses almost nothing, and lowbit's accumulator
    (rne) keeps the variance within 4 standard errors of it (seeded). With chunks of 64 both stay far
    under the cut-off, though the model's truncated chunk sums lose a resolvable 0.002 product
    variances that rounding to nearest does not."""
    th = vrr_theory(14, 5, 256, products="e5m2")
    assert lost_terms(th, 256) < 0.01
    r = _measured(14, 256, 0, "rne")
    assert abs(r["vrr"] - th) < 4 * r["se"], r
    thc = lost_terms(vrr_theory(14, 5, 256, chunk=64, products="e5m2"), 256)
    rc = _measured(14, 256, 64, "rne")
    assert thc < 0.01 * LOST_CUTOFF and rc["lost"] + 4 * rc["lost_se"] < 0.01 * LOST_CUTOFF


def test_accumulator_parts_from_the_model_under_swamping():
    """8 mantissa bits, 1024 products, no chunking (where theory and measurement part, docs/studies.md):
    round to nearest keeps variance the truncation model counts as lost (its errors are unbiased);
    rounding toward zero loses far more (every rounding shrinks the running sum)."""
    th = lost_terms(vrr_theory(8, 5, 1024, products="e5m2"), 1024)
    rne = _measured(8, 1024, 0, "rne")
    rtz = _measured(8, 1024, 0, "rtz")
    assert rne["lost"] + 4 * rne["lost_se"] < th
    assert rtz["lost"] - 4 * rtz["lost_se"] > 10 * th
    assert rne["rel_err_rms"] > 0.01                      # the sums are wrong nonetheless


def test_measured_rows():
    rows = vrr_measured([8, 10], [64, 128], chunks=(0, 64), trials=32, seed=0)
    assert [(r["M"], r["chunk"], r["n"]) for r in rows] == \
        [(M, c, n) for M in (8, 10) for c in (0, 64) for n in (64, 128)]
    for r in rows:
        assert r["trials"] == 32 and r["lost"] == pytest.approx(r["n"] * (1 - r["vrr"]))
    # up to one chunk, chunking changes nothing (the result is round(-0 + inner)): same data, same bits
    by = {(r["M"], r["chunk"], r["n"]): r for r in rows}
    assert by[(8, 0, 64)]["vrr"] == by[(8, 64, 64)]["vrr"]


# -- the script -------------------------------------------------------------------------------------

def test_script(tmp_path):
    script = ROOT / "scripts" / "accumulation_width_study.py"
    out = subprocess.run([sys.executable, str(script), "--out-dir", str(tmp_path), "--trials", "16",
                          "--widths", "6,8", "--lengths", "64,128", "--roundings", "rne",
                          "--theory-widths", "3-10"],
                         capture_output=True, text=True, check=True).stdout
    assert "Minimum mantissa" in out
    with open(tmp_path / "accumulation_width.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * 2 * 2
    with open(tmp_path / "accumulation_width_min.csv") as f:
        mins = list(csv.DictReader(f))
    assert [(m["chunk"], m["n"]) for m in mins] == [("0", "64"), ("0", "128"), ("64", "64"), ("64", "128")]
    assert mins[0]["predicted"] == str(min_mantissa(
        {M: float(lost_terms(vrr_theory(M, 5, 64), 64)) for M in range(3, 11)}))
    try:
        import matplotlib  # noqa: F401
        assert (tmp_path / "accumulation-width.png").stat().st_size > 10_000
    except ImportError:
        pass
