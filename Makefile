# Two commands matter: `make demo` (the main job on the bundled synthetic data) and `make test`.
# Both create and use .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/retrieval-cli
STAMP := $(VENV)/.installed
WORKSPACE ?= artifacts
export RETRIEVAL_CLI_WORKSPACE := $(WORKSPACE)

.PHONY: venv demo test test-fast clean

venv: $(STAMP)

# torch is installed first and pinned: 2.13.0 is the CPU wheel this machine type has on disk;
# without it pip resolves torch for Pyserini/sentence-transformers to a multi-GB CUDA build.
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[dev]'
	touch $(STAMP)

# The main job: BM25 vs dense on the project's synthetic dataset, ending in a report table.
demo: venv
	$(CLI) data synth --name synthetic
	$(CLI) index synthetic --kind bm25
	$(CLI) index synthetic --kind dense --model minilm
	$(CLI) evaluate indexes/synthetic-bm25
	$(CLI) evaluate indexes/synthetic-dense-minilm
	$(CLI) report evaluations/synthetic-bm25-test evaluations/synthetic-dense-minilm-test --name demo

test: venv
	$(PY) -m pytest -q -rs

# Skips the model-heavy and shared-data tests.
test-fast: venv
	$(PY) -m pytest -q -m "not slow and not shared_data"

clean:
	rm -rf $(WORKSPACE)
