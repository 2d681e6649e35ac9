"""Synthesis flows: area and timing of the generated units (``make synth``, ``lowbit synth``).

Flows (see ``docs/synthesis.md``): generic gates, sky130 ASIC, iCE40 and ECP5, each run by the
YoWASP tools in a work folder under ``build/synth/<config-id>/<flow>/``. Public entry points:

* :func:`cli_main` — the ``lowbit synth`` command (also ``python -m hw.synth``);
* :func:`run_configs` with :class:`Config` — run configurations programmatically;
* :func:`premap_cells` — word-level cell counts of a component before technology mapping.
"""

from .config import Config, config_from_args, find_unit
from .flows import FLOWS, premap_cells
from .run import run_configs


def cli_main(argv):
    """``lowbit synth`` (:func:`hw.synth.cli.cli_main`, imported when called: the command sits above
    :mod:`hw.sweep`, which builds on this package)."""
    from .cli import cli_main as main
    return main(argv)

__all__ = ["cli_main", "Config", "config_from_args", "find_unit", "FLOWS", "premap_cells", "run_configs"]
