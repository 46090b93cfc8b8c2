# Two entry points that work on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv bench clean system-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[render,ray,train,test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(BIN)/pairgen build superres --out demo-shards --crops-per-image 4 --shard-size 24 --overwrite
	$(BIN)/pairgen inspect demo-shards
	@echo "demo output: $(CURDIR)/demo-shards (previews in demo-shards/preview/)"

# Debian tools the tests drive for real (installed here, never by hand): h5dump reads our HDF5 shards.
system-tools:
	@command -v h5dump >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends hdf5-tools)

test: $(STAMP) system-tools
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_degrade.py
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_render.py

clean:
	rm -rf $(VENV) demo-shards
