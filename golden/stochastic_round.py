"""Golden model of the stochastic-rounding unit (``docs/arithmetic.md`` sections 2 and 6)."""

from __future__ import annotations

from .checks import check_rand_bits, check_rounding
from .formats import FixedFormat, FloatFormat, float_format_param, parse_format_param
from .raw import round_raw, unpack

__all__ = ["round_codes", "check_sr_formats"]


def check_sr_formats(source, target):
    """Parse and validate source (float or fixed point) and target (radix-2 float) formats."""
    src = parse_format_param("source", source)
    if not isinstance(src, (FloatFormat, FixedFormat)) or (isinstance(src, FloatFormat) and src.radix != 2):
        raise ValueError(f"source must be a radix-2 float format or fix<W>.<F>/ufix<W>.<F>, not {src}")
    return src, float_format_param("target", target)


def round_codes(codes, source, target, rounding="sr", rbits=None, rand_bits=None):
    """Round codes of ``source`` into ``target`` (one rounding); ``rbits`` feed ``sr``."""
    src, dst = check_sr_formats(source, target)
    check_rounding(rounding)
    rand_bits = check_rand_bits(rand_bits, rounding)
    return round_raw(dst, unpack(src, codes), rounding, rbits=rbits, rand_bits=rand_bits)
