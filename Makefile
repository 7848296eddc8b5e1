# `make demo` and `make test` set everything up themselves (see infra/bootstrap.sh).
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export TF_CPP_MIN_LOG_LEVEL := 2
# Prefect's database (ephemeral mode and `make server`) lives in the workspace unless you point elsewhere.
export PREFECT_HOME ?= $(CURDIR)/var/prefect

.PHONY: setup demo test check-reliability lint server deployments clean lock bench bench-prepare bench-psi bench-aggregates bench-recommender bench-scalable-recommender bench-scalable-sum bench-scalable-training bench-scalable-training-noised bench-recommender-accuracy bench-tls bench-topology bench-export-tools

setup:
	@infra/bootstrap.sh
	@mkdir -p "$(PREFECT_HOME)"

demo: setup
	@$(BIN)/cleanroom demo

test: setup
	@$(BIN)/ruff check .
	@$(BIN)/pytest -q

# Faults injected and malformed inputs tried; prints the figures (make test prints them too).
check-reliability: setup
	@$(BIN)/pytest -q -m reliability

# Benchmarks write their ratios into BENCHMARKS.md (see that file for what each one measures).
bench: bench-prepare bench-export-tools bench-psi bench-aggregates bench-recommender bench-scalable-recommender bench-scalable-sum bench-scalable-training bench-scalable-training-noised bench-recommender-accuracy bench-tls bench-topology

bench-prepare: setup
	@$(BIN)/python -m bench.prepare_party

bench-export-tools: setup
	@$(BIN)/python -m bench.export_tools

bench-aggregates: setup
	@$(BIN)/python -m bench.secure_aggregates

bench-recommender: setup
	@$(BIN)/python -m bench.recommender

bench-scalable-recommender: setup
	@$(BIN)/python -m bench.scalable_recommender

bench-scalable-sum: setup
	@$(BIN)/python -m bench.scalable_sum

bench-scalable-training: setup
	@$(BIN)/python -m bench.scalable_training --sweep 0.25,0.5

bench-scalable-training-noised: setup
	@$(BIN)/python -m bench.scalable_training --rho 1

bench-recommender-accuracy: setup
	@$(BIN)/python -m bench.recommender_accuracy

bench-psi: setup
	@$(BIN)/python -m bench.psi_overlap

bench-tls: setup
	@$(BIN)/python -m bench.tls_overhead

# Needs root: the consortium across network namespaces, as the end-to-end tests build it.
bench-topology: setup
	@$(BIN)/python -m bench.lifecycle_topology

lint: setup
	@$(BIN)/ruff check . && $(BIN)/ruff format --check .

# A persistent Prefect server with the UI on http://127.0.0.1:4200 (see README).
server: setup
	@$(BIN)/prefect server start --host 127.0.0.1 --port 4200

# Serve the on-demand, monthly and on-new-data deployments (needs `make server` in another terminal).
deployments: setup
	@PREFECT_API_URL=$${PREFECT_API_URL:-http://127.0.0.1:4200/api} $(BIN)/python -m deployments.lifecycle --spec var/demo/consortium.yaml

clean:
	rm -rf var

# Re-resolve the lock file after changing pyproject.toml dependencies.
lock: setup
	@$(BIN)/pip-compile --quiet --extra dev --strip-extras --no-emit-index-url -o requirements.lock pyproject.toml
	@sed -i '/^--find-links/d' requirements.lock
