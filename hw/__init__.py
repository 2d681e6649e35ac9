"""lowbit hardware generators (Amaranth HDL 0.5).

Units live one per sub-package (``hw.stochastic_round``, ``hw.fp8_fma``, ``hw.mac4``,
``hw.accumulator``); the shared arithmetic blocks beside them (``hw.float``, ``hw.lzc``,
``hw.normalize``, ``hw.rounder``, ``hw.pipeline``) exist once and every unit imports them.
"""

__version__ = "0.1.0"
