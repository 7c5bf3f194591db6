# Two commands matter: `make run` (the app on the demo workspace) and `make test` (the whole suite).
# Both bootstrap .venv from the pinned requirements.txt themselves.
PY ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

# Translations: resources/i18n/*.ts are the reviewed sources (committed); the .qm files the app
# loads are built from them here (docs/I18N.md). `make i18n` re-extracts the strings from the code.
LUPDATE := $(VENV)/bin/pyside6-lupdate
LRELEASE := $(VENV)/bin/pyside6-lrelease
TS := $(wildcard resources/i18n/*.ts)
QM := $(TS:.ts=.qm)

.PHONY: venv run test lint bench package package-test clean i18n qm

$(STAMP): requirements.txt
	@test -x $(VPY) || $(PY) -m venv $(VENV)
	$(VPY) -m pip install -q --disable-pip-version-check -r requirements.txt
	@touch $(STAMP)

venv: $(STAMP)

resources/i18n/%.qm: resources/i18n/%.ts | $(STAMP)
	$(LRELEASE) -silent $< -qm $@

qm: $(QM)

i18n: venv
	$(LUPDATE) -extensions py -no-obsolete -locations none main.py viewer training model $(foreach t,$(TS),-ts $(t))
	$(MAKE) qm

run: venv qm
	$(VPY) main.py $(ARGS)

test: venv qm
	QT_QPA_PLATFORM=offscreen QT_DRIVER=PySide6 $(VPY) -m pytest $(PYTEST_ARGS)

lint: venv
	$(VPY) -m ruff check .

bench: venv
	@for b in benchmarks/bench_*.py; do echo "== $$b"; QT_QPA_PLATFORM=offscreen $(VPY) $$b || exit 1; done

package: venv qm
	$(VPY) packaging/build.py

package-test: venv qm
	$(VPY) packaging/build.py --if-needed --test

clean:
	rm -rf build dist .pytest_cache $(QM)
