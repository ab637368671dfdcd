# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Debian packages the test suite needs (installed with apt-get when running as root and missing).
DEB_PACKAGES ?=

.PHONY: install system-deps run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

system-deps:
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or install them)"; fi; \
	fi

HOST    ?= $${CLASSIFIER_HOST:-127.0.0.1}
PORT    ?= $${CLASSIFIER_PORT:-8000}
WORKERS ?= $${CLASSIFIER_WORKERS:-1}

run: install
	$(PY) -m classifier db upgrade
	$(PY) -m uvicorn --factory api.main:app_factory --host $(HOST) --port $(PORT) --workers $(WORKERS) \
	  --no-access-log

test: install system-deps
	$(PY) -m pytest

bench: install
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
