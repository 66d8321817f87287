# Every target bootstraps .venv itself, so each works as the first command on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PROTOS := $(wildcard proto/accessbroker/v1/*.proto)
GEN    := clients/python/accessbroker/v1/broker_pb2.py

.PHONY: install proto sdk lint test test-fast test-stress bench run demo image clean

install: $(STAMP) $(GEN)

$(STAMP): pyproject.toml clients/python/pyproject.toml clients/web/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e clients/python -e clients/web -e '.[dev,sandbox,postgres]'
	touch $@

proto: $(GEN)

$(GEN): $(PROTOS) $(STAMP)
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m grpc_tools.protoc -I proto \
		--python_out=clients/python --grpc_python_out=clients/python \
		--mypy_out=clients/python --mypy_grpc_out=clients/python $(PROTOS)
	touch $@

# The SDK as a wheel in dist/, with the stubs generated from proto/ and py.typed inside.
# build/ is removed first: setuptools would otherwise ship files left there by an older build.
sdk: $(GEN)
	rm -rf clients/python/build dist/accessbroker_client-*.whl
	$(BIN)/python -m pip wheel --quiet --no-deps --wheel-dir dist clients/python

lint: install
	$(BIN)/ruff check broker tests clients/python/accessbroker clients/web/accessbroker_web bench
	$(BIN)/ruff format --check broker tests clients/python/accessbroker clients/web/accessbroker_web bench
	$(BIN)/mypy
	$(BIN)/lint-imports

# Test files run side by side (most of an e2e test's time is spent waiting on a broker process
# or the emulator); each worker has its own emulator, and PostgreSQL tests their own schemas.
TEST_WORKERS ?= 3

test: lint
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

# The suite without the linters, for a quick loop.
test-fast: install
	$(BIN)/pytest -x -q

# The suite with every core kept busy by another process: it must hold on a loaded machine.
test-stress: install
	$(BIN)/python -m tests.stress -- $(MAKE) test

# The broker beside a bare grpcio echo server, and its AWS calls per operation, each number beside
# its goal (docs/performance.md). A few minutes; e.g. BENCH_ARGS="--slice-seconds 2".
BENCH_ARGS ?=

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# The sandbox broker and the self-service web page next to it (deploy/sandbox/run).
run: install
	BIN=$(BIN) deploy/sandbox/run

demo: install
	$(BIN)/access-broker demo

# The container image (deploy/container/Dockerfile), built with podman; IMAGE_BASE picks the
# base image (default python:3.11-slim), CONTAINER_TOOL the command (default podman).
image: install
	deploy/container/build $(if $(IMAGE_BASE),--base $(IMAGE_BASE))

clean:
	rm -rf $(VENV) dist clients/python/build clients/python/accessbroker/v1/*_pb2*.py* .mypy_cache .ruff_cache .pytest_cache
