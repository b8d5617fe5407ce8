# The one task runner: README.md and .ci/run call exactly these targets.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   ?= .venv
BIN    := $(VENV)/bin
STORAGE ?= ./loanrisk-data

.PHONY: demo test lint typecheck unit bench lock proto clean image image-test

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "loanrisk needs Python 3.11, found " + sys.version'
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: $(BIN)/python requirements/runtime.lock requirements/install.sh pyproject.toml
	sh requirements/install.sh $(VENV) runtime --editable
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements/dask.lock requirements/dev.lock requirements/mlflow.lock requirements/kserve.lock requirements/validation-nodeps.lock requirements/mlflow-server.lock requirements/solas.lock tests/azurite/package-lock.json requirements/debian.txt
	$(BIN)/pip install --quiet --disable-pip-version-check -r requirements/dev.lock -r requirements/mlflow.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps -r requirements/kserve.lock -r requirements/validation-nodeps.lock
	$(PYTHON) -m venv $(VENV)/mlflow-server
	$(VENV)/mlflow-server/bin/pip install --quiet --disable-pip-version-check -r requirements/mlflow-server.lock
	$(PYTHON) -m venv $(VENV)/solas
	$(VENV)/solas/bin/pip install --quiet --disable-pip-version-check -r requirements/solas.lock
	npm ci --prefix tests/azurite --no-audit --no-fund --loglevel=error
	@missing=$$(for p in $$(grep -v '^#' requirements/debian.txt); do command -v $$p >/dev/null || dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'ok installed' || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages: $$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null \
	  || { echo "could not install $$missing (needs root and Debian's package registry)"; exit 1; }; \
	fi
	touch $@

## demo: set up, then run the main job on the built-in sample (local storage under $(STORAGE))
demo: $(VENV)/.runtime
	$(BIN)/loanrisk demo --storage $(STORAGE)

## test: set up, then lint, type-check and run the whole test suite
test: lint typecheck unit

lint: $(VENV)/.dev
	$(BIN)/ruff check src tests benchmarks deploy
	$(BIN)/ruff format --check src tests benchmarks deploy
	$(BIN)/lint-imports --no-logo --no-cache
	@! grep -rn --include='*.py' 'fmt: \(skip\|off\)' src tests benchmarks deploy || { echo "let the formatter decide: no fmt: skip/off"; exit 1; }

typecheck: $(VENV)/.dev
	$(BIN)/mypy

# Two pytest-xdist workers (a module runs whole on one; tests/conftest.py groups and orders
# them); WORKERS=0 runs the suite in one process.
WORKERS ?= 2
unit: $(VENV)/.dev
	OMP_WAIT_POLICY=PASSIVE $(BIN)/pytest -n $(WORKERS) --dist loadgroup --no-loadscope-reorder

## image: build the container image with the engine present (deploy/docker/build.sh,
## docs/deploy-aws.md#the-image): the serving image loanrisk:VERSION, or loanrisk-LOCK:VERSION
## with LOCK=runtime (everything: tuning, scorecards) or LOCK=dask.
## CA=FILE: a CA bundle the build trusts (a TLS-intercepting proxy's); by default the one pip
## here trusts (PIP_CERT, else pip's configured cert); CA= builds without one.
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' pyproject.toml)
LOCK    ?= serve
IMAGE   ?= $(if $(filter serve,$(LOCK)),loanrisk,loanrisk-$(LOCK)):$(VERSION)
CA      ?= $(or $(PIP_CERT),$(shell $(BIN)/pip config get global.cert 2>/dev/null))
image:
	CA='$(CA)' sh deploy/docker/build.sh $(IMAGE) $(LOCK)

## image-test: run the built image as Kubernetes does and check it (tests/image, buildah)
image-test: $(VENV)/.dev
	LOANRISK_IMAGE=$(IMAGE) LOANRISK_IMAGE_LOCK=$(LOCK) LOANRISK_IMAGE_CA='$(CA)' OMP_WAIT_POLICY=PASSIVE \
	  $(BIN)/pytest tests/image -p no:randomly -p no:xdist

## bench: the benchmarks (see benchmarks/README.md)
bench: $(VENV)/.dev
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_cli.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_data.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_memory.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_transform.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_job_start.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_train.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_score.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_http.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_log.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_shadow.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_oip.py
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_quality.py --seeds 0 1 2
	OMP_WAIT_POLICY=PASSIVE $(BIN)/python benchmarks/bench_lean.py --trials 20 --repeat 3 --scaling 10000 100000 1000000 10000000

## proto: regenerate the OIP gRPC modules from src/loanrisk/oip/oip.proto (committed)
proto: $(VENV)/.dev
	cd src && ../$(BIN)/python -m grpc_tools.protoc -I . --python_out=. --pyi_out=. \
	  --grpc_python_out=. loanrisk/oip/oip.proto

## lock: re-resolve requirements/*.lock from pyproject.toml in throw-away venvs
lock:
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet '.[tune,scorecard]'
	.lock-venv/bin/pip freeze --exclude loanrisk > requirements/runtime.lock
	.lock-venv/bin/pip install --quiet '.[dask]'
	(echo '-r runtime.lock'; .lock-venv/bin/pip freeze --exclude loanrisk | grep -vxFf requirements/runtime.lock) > requirements/dask.lock
	.lock-venv/bin/pip install --quiet '.[dev]'
	(echo '-r dask.lock'; .lock-venv/bin/pip freeze --exclude loanrisk | grep -vxFf requirements/runtime.lock | grep -vxFf requirements/dask.lock) > requirements/dev.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet -r requirements/runtime.lock '.[mlflow]'
	(sed -n 1,2p requirements/mlflow.lock; echo '-r runtime.lock'; .lock-venv/bin/pip freeze --exclude loanrisk | grep -vxFf requirements/runtime.lock) > requirements/mlflow.lock.new
	mv requirements/mlflow.lock.new requirements/mlflow.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet "mlflow==$$(sed -n 's/^mlflow-skinny==//p' requirements/mlflow.lock)"
	(sed -n 1,2p requirements/mlflow-server.lock; .lock-venv/bin/pip freeze) > requirements/mlflow-server.lock.new
	mv requirements/mlflow-server.lock.new requirements/mlflow-server.lock
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet "solas-ai==$$(sed -n 's/^solas-ai==//p' requirements/solas.lock)"
	(sed -n 1,3p requirements/solas.lock; .lock-venv/bin/pip freeze) > requirements/solas.lock.new
	mv requirements/solas.lock.new requirements/solas.lock
	# The serving image's: loanrisk without its tune and scorecard extras, at runtime.lock's pins.
	rm -rf .lock-venv && $(PYTHON) -m venv .lock-venv && .lock-venv/bin/pip install --quiet -c requirements/runtime.lock .
	.lock-venv/bin/pip freeze --exclude loanrisk > requirements/serve.lock
	rm -rf .lock-venv

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache $(STORAGE)
