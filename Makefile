# Two commands do everything on a fresh clone: `make run` and `make test`.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
# Debian packages the test suite and the benchmarks need (installed with apt-get as root when missing; a command of
# that name counts as present: NodeSource's nodejs provides npm, and Debian's npm package conflicts with it).
DEB_PACKAGES ?= postgresql chromium npm
DEB_BENCH_PACKAGES ?= wrk

.PHONY: install system-deps bench-deps apt-install run test bench clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[test]'
	@touch $(STAMP)

system-deps:
	@$(MAKE) --no-print-directory apt-install PKGS="$(DEB_PACKAGES)"

bench-deps:
	@$(MAKE) --no-print-directory apt-install PKGS="$(DEB_BENCH_PACKAGES)"

apt-install:
	@missing=""; for p in $(PKGS); do dpkg -s $$p >/dev/null 2>&1 || command -v $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "missing Debian packages:$$missing (run as root or install them)"; fi; \
	fi

HOST    ?= $${CLASSIFIER_HOST:-127.0.0.1}
PORT    ?= $${CLASSIFIER_PORT:-8000}
WORKERS ?= $${CLASSIFIER_WORKERS:-1}

run: install
	$(PY) -m classifier db upgrade
	CLASSIFIER_AUTO_MIGRATE=false $(PY) -m uvicorn --factory api.main:app_factory --host $(HOST) --port $(PORT) \
	  --workers $(WORKERS) --no-access-log

# Both cores for most of the suite; the tests that measure time or latency (marked serial) then run alone.
test: install system-deps tests/node_modules
	$(PY) -m pytest -n 2 --dist loadfile -m "not serial"
	$(PY) -m pytest -m serial

# axe-core (npm registry), which the review console's browser test injects into the page to audit accessibility
tests/node_modules: tests/package.json tests/package-lock.json | system-deps
	npm ci --prefix tests --no-audit --no-fund
	@touch $@

bench: install bench-deps
	$(PY) -m bench

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
