# Two commands matter: `make run` (the app on the demo workspace) and `make test` (the whole suite).
# Both bootstrap .venv from the pinned requirements.txt themselves.
PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: venv run test lint bench package package-test clean

$(STAMP): requirements.txt
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

run: venv
	$(VPY) main.py $(ARGS)

test: venv
	QT_QPA_PLATFORM=offscreen QT_DRIVER=PySide6 $(VPY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VPY) -m ruff check .

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; QT_QPA_PLATFORM=offscreen $(VPY) $$b || exit 1; done

package: venv
	$(VPY) packaging/build.py

package-test: venv
	$(VPY) packaging/build.py --if-needed --test

clean:
	rm -rf build dist .pytest_cache
