# Thin wrapper over nox: `make help` lists the targets. Variables: MODEL, BITS, ARGS, BUILD_DIR.
MODEL ?= tencent/HY-MT1.5-1.8B
BITS ?= 4
ARGS ?=
NOX ?= nox
BUILD_DIR ?= build
export BUILD_DIR

NAME := $(notdir $(patsubst %/,%,$(MODEL)))
GPTQ_DIR := $(BUILD_DIR)/$(NAME)/gptq-int$(BITS)

.PHONY: help quantize test lint lock doctor

help:  ## list the targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

quantize:  ## MODEL -> $(BUILD_DIR)/<name>/gptq-int$(BITS) (ARGS: more quantize.py options)
	$(NOX) -s quantize -- --model $(MODEL) --bits $(BITS) $(ARGS)

test:  ## lint, then the whole test suite (unit and end-to-end)
	$(NOX) -s lint tests

lint:  ## ruff check and format check
	$(NOX) -s lint

lock:  ## recompile the pinned locks in envs/
	$(NOX) -s lock
