"""golden.lfsr: maximal-length tap sets, the word definition, the m-sequence statistics, validation.

Primitivity is checked twice, independently: algebraically (``is_primitive``) for every default
polynomial, and by brute force (walking ``lfsr_step`` around the whole cycle) for widths 3..16.
The word test re-implements the module docstring's definition with its own shift register.
"""

from math import gcd

import numpy as np
import pytest

from golden.lfsr import DEFAULT_TAPS, check_lfsr, is_primitive, lfsr_step, lfsr_words


def brute_period(width, taps, seed=1):
    """Steps until ``lfsr_step`` returns to ``seed`` (None if it does not within 2**width steps)."""
    state = seed
    for k in range(1, (1 << width) + 1):
        state = lfsr_step(state, width, taps)
        if state == seed:
            return k
    return None


def reference_words(width, taps, seed, rand_bits, count):
    """Word i = low R bits of the state after R*(i+1) steps, from the docstring's description:
    shift left, the XOR of bits t-1 (t in taps) enters at bit 0. A list of bits, not an integer."""
    bits = [(seed >> k) & 1 for k in range(width)]      # bits[k] is state bit k
    words = []
    for _ in range(count):
        for _ in range(rand_bits):
            fb = 0
            for t in taps:
                fb ^= bits[t - 1]
            bits = [fb] + bits[:-1]
        words.append(sum(b << k for k, b in enumerate(bits[:rand_bits])))
    return words


def test_default_taps_cover_every_width():
    assert sorted(DEFAULT_TAPS) == list(range(3, 33))
    for width, taps in DEFAULT_TAPS.items():
        assert taps[0] == width and len(set(taps)) == len(taps) >= 2
        assert all(1 <= t <= width for t in taps)


@pytest.mark.parametrize("width", sorted(DEFAULT_TAPS))
def test_default_taps_are_primitive(width):
    assert is_primitive(width, DEFAULT_TAPS[width])


@pytest.mark.parametrize("width", range(3, 17))
def test_default_taps_have_full_period_by_brute_force(width):
    assert brute_period(width, DEFAULT_TAPS[width]) == (1 << width) - 1


@pytest.mark.parametrize("width, taps", [
    (4, (4, 2)),            # x^4 + x^2 + 1 = (x^2 + x + 1)^2
    (4, (4, 3, 2, 1)),      # x^4 + x^3 + x^2 + x + 1: irreducible, order 5, not primitive
    (5, (5, 4, 3)),         # x^5 + x^2 + x + 1: an even number of terms, divisible by x + 1
    (6, (6, 3)),            # x^6 + x^3 + 1: irreducible of order 9, not 63
    (8, (8, 4)),            # x^8 + x^4 + 1 = (x^4 + x^2 + 1)^2
    (16, (16, 3)),
    (16, (16, 8)),
])
def test_is_primitive_rejects_non_primitive(width, taps):
    assert not is_primitive(width, taps)
    # The brute-force period agrees: shorter than 2**w - 1 (or seed 1 never comes back).
    assert brute_period(width, taps) != (1 << width) - 1


@pytest.mark.parametrize("width", range(3, 11))
def test_is_primitive_agrees_with_brute_force_on_every_tap_set(width):
    """All tap sets {width} + two further taps below ``width`` (plus all single extra taps)."""
    others = range(1, width)
    sets = [(width, t) for t in others] + [(width, a, b) for a in others for b in others if a > b]
    for taps in sets:
        assert is_primitive(width, taps) == (brute_period(width, taps) == (1 << width) - 1), taps


@pytest.mark.parametrize("width, taps, seed, rand_bits", [
    (16, None, 1, 8), (16, (16, 15, 13, 4), 0xACE1, 5), (3, None, 5, 3), (7, None, 0x55, 1),
    (31, None, 0x1234567, 13), (32, (32, 22, 2, 1), 0xFFFFFFFF, 32), (12, (12, 6, 4, 1), 0x800, 12),
])
def test_lfsr_words_matches_definition(width, taps, seed, rand_bits):
    count = 300
    got = lfsr_words(width, taps, seed, rand_bits, count)
    assert got.dtype == np.uint64 and got.shape == (count,)
    want = reference_words(width, taps or DEFAULT_TAPS[width], seed, rand_bits, count)
    assert got.tolist() == want


def test_lfsr_words_taps_order_and_default_do_not_matter():
    a = lfsr_words(16, None, 7, 8, 50)
    b = lfsr_words(16, (4, 13, 15, 16), 7, 8, 50)
    assert a.tolist() == b.tolist()


@pytest.mark.parametrize("width, rand_bits", [
    (5, 1), (5, 3), (5, 5), (8, 7), (10, 2), (10, 4), (10, 7), (12, 11), (14, 8),
])
def test_full_period_word_statistics(width, rand_bits):
    """Over one period, with R coprime to the period 2**w - 1, the states S**(R(i+1)) visit every
    nonzero state once; so each nonzero R-bit word appears 2**(w-R) times and zero 2**(w-R) - 1."""
    period = (1 << width) - 1
    assert gcd(rand_bits, period) == 1
    words = lfsr_words(width, None, 1, rand_bits, period).astype(np.int64)
    counts = np.bincount(words, minlength=1 << rand_bits)
    expected = np.full(1 << rand_bits, 1 << (width - rand_bits))
    expected[0] -= 1
    assert counts.tolist() == expected.tolist()
    # ...and the sequence of words repeats with exactly that period.
    again = lfsr_words(width, None, 1, rand_bits, 2 * period).astype(np.int64)
    assert again[period:].tolist() == words.tolist()


def test_non_coprime_rand_bits_shortens_the_word_period():
    """R = 3 divides 2**4 - 1 = 15: the word sequence repeats after 5 words (a derived property)."""
    words = lfsr_words(4, None, 1, 3, 15).tolist()
    assert words[:5] * 3 == words


def test_check_lfsr_defaults_and_normalization():
    assert check_lfsr(16) == (16, (16, 15, 13, 4), 1)
    assert check_lfsr(8, (4, 8, 5, 6), 0xFF, 8) == (8, (8, 6, 5, 4), 0xFF)
    assert check_lfsr(np.int64(10), seed=np.uint16(3))[0::2] == (10, 3)


@pytest.mark.parametrize("kwargs, words", [
    (dict(width=16, seed=0), ("seed", "nonzero")),
    (dict(width=16, seed=1 << 16), ("seed", "2**16")),
    (dict(width=8, seed=-1), ("seed", "nonzero")),
    (dict(width=16, taps=(15, 14)), ("lfsr_taps", "16")),
    (dict(width=16, taps=(17, 16)), ("lfsr_taps", "1..16")),
    (dict(width=16, taps=(16, 0)), ("lfsr_taps", "1..16")),
    (dict(width=16, taps=(16,)), ("lfsr_taps", "two taps")),
    (dict(width=16, rand_bits=17), ("rand_bits", "lfsr_width=16")),
    (dict(width=16, rand_bits=0), ("rand_bits", "between 1")),
    (dict(width=2), ("lfsr_width", "3 and 32")),
    (dict(width=33), ("lfsr_width", "3 and 32")),
    (dict(width=0), ("lfsr_width", "3 and 32")),
    (dict(width=16.0), ("lfsr_width", "integer")),
    (dict(width=16, seed="1"), ("seed", "integer")),
])
def test_check_lfsr_errors(kwargs, words):
    with pytest.raises(ValueError) as info:
        check_lfsr(**kwargs)
    msg = str(info.value)
    assert "\n" not in msg
    for w in words:
        assert w in msg


def test_lfsr_words_validates_parameters():
    with pytest.raises(ValueError, match="seed"):
        lfsr_words(16, None, 0, 8, 4)
    with pytest.raises(ValueError, match="rand_bits"):
        lfsr_words(8, None, 1, 9, 4)
    with pytest.raises(ValueError, match="lfsr_taps"):
        lfsr_words(8, (7, 6), 1, 4, 4)


def test_lane_words_are_the_one_word_sequence_by_rows():
    from golden.lfsr import lfsr_lane_words
    rows = lfsr_lane_words(17, None, 5, 6, 4, 10)
    assert rows.shape == (10, 4)
    assert rows.ravel().tolist() == lfsr_words(17, None, 5, 6, 40).tolist()
    with pytest.raises(ValueError, match="lanes"):
        lfsr_lane_words(17, None, 5, 6, 0, 10)
