# Synthesis flows (see docs/synthesis.md). Examples:
#   make synth                                   default matrix (hw/synth/scripts/matrix.toml, a sweep file)
#                                                -> build/synth/report.{json,md}, area.png, sweep.{json,csv,md}
#   make synth UNIT=fp8_fma ARGS="--acc-format e6m9 --stages 2"
#   make synth-smoke                             one tiny design through every flow (about a minute)
#   make train                                   every training recipe, both models -> build/train
#                                                (docs/training.md; TRAIN_ARGS="--epochs 5" etc.)
# Variables: PYTHON (default python), JOBS (default 2), LIBERTY (sky130 .lib[.gz]; default: lowbit's
# own copy, see docs/synthesis.md), FLOWS, FORCE=1. Build folders are relative to the current folder.

PYTHON ?= python
JOBS ?= 2
LIBERTY ?=
FLOWS ?=
FORCE ?=

SYNTH_OPTS = -j $(JOBS) $(if $(LIBERTY),--liberty $(LIBERTY)) $(if $(FLOWS),--flows $(FLOWS)) $(if $(FORCE),--force)

TRAIN_ARGS ?=

.PHONY: synth synth-smoke train clean

synth:
	$(PYTHON) -m hw.synth $(UNIT) $(ARGS) $(SYNTH_OPTS)

synth-smoke:
	$(PYTHON) -m hw.synth --smoke $(SYNTH_OPTS)

train:
	$(PYTHON) -m hw.cli train -j $(JOBS) -o build/train $(TRAIN_ARGS)

clean:
	rm -rf build/synth build/synth-smoke build/train
