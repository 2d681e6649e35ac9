"""The gradient quantizers and the max-magnitude reducer their scales come from.

* :class:`LUQ` (unit ``luq``): LUQ's 4-bit codes (Chmiel et al. 2023) with a power-of-two scale.
* :class:`TPRQuantize` (unit ``tpr_quantize``): Sun et al. 2020's radix-4 FP4 codes of both
  two-phase-rounding phases, the operands :mod:`hw.mac4` consumes.
* :class:`Amax` (unit ``amax``): the streaming maximum magnitude of float codes per packet.

Semantics: ``docs/arithmetic.md`` sections 8.5 and 10; golden models in :mod:`golden.quantize`.
"""

from .amax import Amax
from .luq import LUQ
from .tpr import TPRQuantize

__all__ = ["LUQ", "TPRQuantize", "Amax"]
