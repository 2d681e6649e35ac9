"""Bit-exact NumPy golden models of lowbit's arithmetic (the specification: ``docs/arithmetic.md``)."""

from .formats import (FloatFormat, IntFormat, FormatError, parse_format, PRESETS, ROUNDING_MODES)
from .raw import Raw, unpack, round_raw

__all__ = ["FloatFormat", "IntFormat", "FormatError", "parse_format", "PRESETS", "ROUNDING_MODES",
           "Raw", "unpack", "round_raw"]
