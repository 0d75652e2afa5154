# Thin wrapper over nox; `make help` lists the targets.
# Variables: MODEL (hub id or folder), BITS (4|8), ARGS (extra options for the one step you run),
# VERIFY_ARGS (options of the verify step inside `make all`), BUILD_DIR (build), NOX (nox),
# DIR (the package `make check-package` checks and `make board` deploys; default the AX650 build),
# HOST (the board for `make board`: USER@ADDR, an ~/.ssh/config alias, or local).
MODEL ?= tencent/HY-MT1.5-1.8B
BITS ?= 4
ARGS ?=
VERIFY_ARGS ?=
NOX ?= nox
BUILD_DIR ?= build
export BUILD_DIR

NAME := $(notdir $(patsubst %/,%,$(MODEL)))
SUFFIX := $(if $(filter-out 4,$(BITS)),-int$(BITS))
QUANT := $(BUILD_DIR)/$(NAME)/gptq-int$(BITS)
VERIFIED := $(QUANT)-verify
AX650 := $(BUILD_DIR)/$(NAME)/ax650$(SUFFIX)
AX620E := $(BUILD_DIR)/$(NAME)/ax620e$(SUFFIX)
# A local model's files: when they change, `make all` quantizes again.
MODEL_FILES := $(wildcard $(MODEL)/*.json $(MODEL)/*.safetensors $(MODEL)/*.bin $(MODEL)/*.model)

.PHONY: help all preflight quantize verify build-ax650 build-ax620e board toolchain check-package doctor test lint lock

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

all: $(AX650)/manifest.json $(AX620E)/manifest.json  ## quantize, verify, build both chips (no-op when done)

preflight:  ## will MODEL build and fit on the board? (seconds; ARGS="--board llm-8850")
	$(NOX) -s preflight -- --model $(MODEL) --bits $(BITS) $(ARGS)

quantize:  ## MODEL -> $(BUILD_DIR)/<name>/gptq-int$(BITS)
	$(NOX) -s quantize -- --model $(MODEL) --bits $(BITS) $(ARGS)

verify: $(QUANT)/manifest.json  ## measure the quantized model against MODEL on both chips' numerics, as `make all`
	$(NOX) -s verify -- --reference $(MODEL) --quantized $(QUANT) $(EMULATE_CHIPS) $(ARGS)

build-ax650: $(QUANT)/manifest.json  ## build for AX650 (quantizes first if needed)
	$(NOX) -s build-ax650 -- --input $(QUANT) --output $(AX650) $(ARGS)

build-ax620e: $(QUANT)/manifest.json  ## build for AX620E (quantizes first if needed)
	$(NOX) -s build-ax620e -- --input $(QUANT) --output $(AX620E) $(ARGS)

board:  ## deploy DIR (default the AX650 build) to HOST=USER@ADDR, serve with axllm, measure there
	$(if $(HOST),,$(error name the board: make board HOST=USER@ADDR [DIR=build/<name>/ax650]))
	$(NOX) -s board -- --package $(or $(DIR),$(AX650)) --host $(HOST) $(ARGS)

toolchain:  ## prepare and report the pulsar2 toolchain (PULSAR2_BIN, PULSAR2_PACKAGE or Docker)
	$(NOX) -s toolchain

check-package:  ## check DIR as axllm and Axera's Python demo would read it
	$(NOX) -s check-package -- $(or $(DIR),$(AX650))

doctor:  ## what is present and missing before a long run
	$(NOX) -s doctor -- --model $(MODEL)

test:  ## lint, then the whole test suite (unit and end-to-end)
	$(NOX) -s lint tests

lint:  ## ruff check, format check and import boundaries (import-linter)
	$(NOX) -s lint

lock:  ## recompile the pinned locks in envs/
	$(NOX) -s lock

# When a chip build is the goal, a model pulsar2 refuses or a missing toolchain stops the run in
# seconds, before quantizing and verifying (which take an hour on a CPU). Target-specific: `make
# quantize`/`make verify` need neither; each goal judges the chips it builds.
all: CHIPS = --chip ax650 --chip ax620e
build-ax650: CHIPS = --chip ax650
build-ax620e: CHIPS = --chip ax620e
all build-ax650 build-ax620e: CHECKS_FIRST = $(NOX) -s preflight -- --model $(MODEL) --bits $(BITS) \
	$(CHIPS) --before "$(1)" && $(NOX) -s toolchain -- --before "$(1)"

# File targets: Make re-runs a step only when its input is newer than its manifest.
$(QUANT)/manifest.json: $(MODEL_FILES)
	$(call CHECKS_FIRST,quantizing)
	$(NOX) -s quantize -- --model $(MODEL) --bits $(BITS)
	@touch $@

# Verify before the chip builds, so a bad quantization stops the pipeline before hours of compiling,
# on the numerics of the chips it builds (one pass per distinct setting; ax650 and ax620e share one).
EMULATE_CHIPS := --emulate ax650 --emulate ax620e
$(VERIFIED)/PASSED: $(QUANT)/manifest.json
	$(call CHECKS_FIRST,verifying)
	$(NOX) -s verify -- --reference $(MODEL) --quantized $(QUANT) $(EMULATE_CHIPS) $(VERIFY_ARGS)
	@touch $@

$(AX650)/manifest.json: $(VERIFIED)/PASSED
	$(NOX) -s build-ax650 -- --input $(QUANT) --output $(AX650)
	@touch $@

$(AX620E)/manifest.json: $(VERIFIED)/PASSED
	$(NOX) -s build-ax620e -- --input $(QUANT) --output $(AX620E)
	@touch $@
