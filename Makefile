# Two entry points that work on a fresh machine: `make demo` and `make test`.
PY ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test venv browser bench clean system-tools

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[render,ray,train,test,s3]'
	touch $(STAMP)

venv: $(STAMP)

# Headless Chromium for the report's browser test (tests/test_report.py), from Debian (root, as on CI).
browser:
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium chromium-driver; }

demo: $(STAMP)
	$(BIN)/pairgen build superres --out demo-shards --crops-per-image 4 --shard-size 24 --overwrite
	$(BIN)/pairgen inspect demo-shards --html demo-report
	@echo "demo output: $(CURDIR)/demo-shards (previews in demo-shards/preview/; open demo-report/index.html)"

# Debian tools the tests drive for real (installed here, never by hand): h5dump reads our HDF5 shards.
system-tools:
	@command -v h5dump >/dev/null || (apt-get update -q && apt-get install -y -q --no-install-recommends hdf5-tools)

test: $(STAMP) system-tools browser
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_degrade.py
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_loader.py
	$(BIN)/python benchmarks/bench_render.py
	$(BIN)/python benchmarks/bench_memory.py
	$(BIN)/python benchmarks/bench_scaleout.py

clean:
	rm -rf $(VENV) demo-shards demo-report
