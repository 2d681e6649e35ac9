"""Bit-exact NumPy golden models of lowbit's arithmetic (the specification: ``docs/arithmetic.md``)."""

from .checks import ROUNDING_MODES
from .formats import (FloatFormat, IntFormat, FormatError, parse_format, PRESETS)
from .raw import Raw, unpack, round_raw

__all__ = ["FloatFormat", "IntFormat", "FormatError", "parse_format", "PRESETS", "ROUNDING_MODES",
           "Raw", "unpack", "round_raw"]
