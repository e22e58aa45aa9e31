# Two commands from nothing: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test install clean soak

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[synth,test]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(VENV)/bin/nicoffload regress

# -n 2: the two cores of the CI machine; Verilator builds are cached under build/.
# --durations: the CI log shows where the time goes (the 30-minute budget).
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadgroup --durations=30

soak: $(STAMP)
	NICOFFLOAD_SOAK=1 $(PY) -m pytest -n 2 --dist loadgroup -m slow

clean:
	rm -rf build .pytest_cache
