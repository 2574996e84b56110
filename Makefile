# notifier: every target does its own set-up, so `make demo` and `make test`
# work on a fresh machine (Python 3.11+, cargo, network access to PyPI/crates.io).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
export VIRTUAL_ENV := $(abspath $(VENV))
export PATH := $(abspath $(BIN)):$(PATH)
export PYO3_PYTHON := $(abspath $(BIN))/python
# cargo test links libpython (no extension-module feature there).
PYLIBDIR = $(shell $(BIN)/python -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')

# The wheel of the extension `make setup` builds, for the suite on the other CPythons.
WHEELS   := target/wheels-test
PYTHONS  ?= 3.12 3.13

RUST_SRC := Cargo.toml $(shell find rust -name '*.rs' 2>/dev/null)
PY_META  := pyproject.toml

.PHONY: setup build demo test test-rust test-python test-pythons lint bench bench-ci fmt clean

setup: $(VENV)/.built

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip 'maturin>=1.7,<2'

# Release build of the extension, profile-guided (deploy/pgo/build.sh: PGO=auto|1|0),
# installed editable into the venv with every extra, and packed as a wheel into $(WHEELS).
# Everything the demo needs is in it, so it also stands for the demo's set-up.
$(VENV)/.built: $(PY_META) $(RUST_SRC) deploy/pgo/build.sh deploy/pgo/train.py | $(BIN)/python
	WHEEL_OUT=$(WHEELS) deploy/pgo/build.sh $(BIN)/python develop --release --extras demo,test,lint
	$(BIN)/python -c 'import notifier._core'
	touch $@ $(VENV)/.built-demo

# The demo's set-up: the same build with only the `demo` extra (moto, boto3), none of the
# test and lint tools. A later `make setup`/`make test` adds them (and rebuilds).
$(VENV)/.built-demo: $(PY_META) $(RUST_SRC) deploy/pgo/build.sh deploy/pgo/train.py | $(BIN)/python
	deploy/pgo/build.sh $(BIN)/python develop --release --extras demo
	$(BIN)/python -c 'import notifier._core'
	touch $@

build: setup

demo: $(VENV)/.built-demo
	$(BIN)/notifier demo --events 1000

test: setup lint test-rust test-python test-pythons

test-rust:
	LD_LIBRARY_PATH=$(PYLIBDIR) cargo test --quiet

# Two pytest-xdist workers: the suite waits on moto, subprocesses and deadlines more than it
# computes, so two workers on two cores take about 60% of the time of one.
test-python: setup
	$(BIN)/python -m pytest -q -n 2

# The same suite on CPython 3.12 and 3.13 (Lambda's), from the wheel of the same build.
test-pythons: setup
	.ci/test-pythons $(WHEELS) $(PYTHONS)

lint: setup
	cargo fmt --check
	cargo clippy --quiet --all-targets -- -D warnings
	$(BIN)/ruff check python tests benches deploy
	$(BIN)/ruff format --check python tests benches deploy
	$(BIN)/mypy
	$(BIN)/python -m mypy.stubtest notifier._core --allowlist .ci/stubtest-allowlist

bench: setup
	mkdir -p .benchmarks
	$(BIN)/python -m pytest benches -q --benchmark-only --benchmark-json=.benchmarks/latest.json --benchmark-columns=mean,median,ops,rounds
	$(BIN)/python benches/report.py .benchmarks/latest.json
	$(BIN)/python benches/check_ratios.py .benchmarks/latest.json

# CI gate: a quick run of only the groups tracked in benches/ratios.toml, then the floors
# (decoders at 1,000 records only; pytest-benchmark's own rounds capped at 0.3 s per test).
bench-ci: setup
	mkdir -p .benchmarks
	$(BIN)/python -m pytest benches/test_send.py benches/test_send_webhook.py benches/test_send_sns.py benches/test_ledger.py benches/test_handler.py benches/test_decode.py benches/test_render.py -q --benchmark-only --bench-quick --benchmark-max-time=0.3 --benchmark-min-rounds=5 --benchmark-json=.benchmarks/ci.json --benchmark-columns=mean,rounds
	$(BIN)/python benches/report.py .benchmarks/ci.json
	$(BIN)/python benches/check_ratios.py .benchmarks/ci.json

fmt:
	cargo fmt
	$(BIN)/ruff format python tests benches deploy
	$(BIN)/ruff check --fix python tests benches deploy

clean:
	rm -rf $(VENV) $(VENV)-3.* target .pytest_cache .mypy_cache .ruff_cache .benchmarks
