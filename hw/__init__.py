"""lowbit hardware generators (Amaranth HDL 0.5).

Units live one per sub-package (``hw.stochastic_round``, ``hw.fp8_fma``, ``hw.mac4``,
``hw.accumulator``); the shared arithmetic blocks beside them (``hw.float`` unpack and layouts,
``hw.lzc``, ``hw.align``, ``hw.multiply``, ``hw.addalign``, ``hw.rounder``, ``hw.addround`` the one
add-and-round path, ``hw.pipeline``) exist once and every unit imports them.
"""

__version__ = "0.1.0"
