# Two commands set up a fresh machine and do the work:
#   make run    creates .venv, installs what the main job needs ([nst]), runs graphs/nst_starry.json
#   make test   creates .venv, installs everything ([all]) and, as root on Debian, the system
#               packages the tests need; then lint, type checks, the docs build and the tests
# Also: make lint, make typecheck, make docs. Each install happens when it is missing, or when
# pyproject.toml is newer than its stamp file in .venv/.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# Debian packages the tests need: chromium (the web editor's browser tests), iproute2 and
# util-linux (ip, unshare: the Ray tests' loopback-only network namespace).
SYSTEM_PACKAGES := chromium iproute2 util-linux
PYTEST_ARGS ?=

.PHONY: run test lint typecheck docs system-packages

run: $(VENV)/.installed-nst
	$(BIN)/nodeflow run graphs/nst_starry.json

test: system-packages lint typecheck docs
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: $(VENV)/.installed-all
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(VENV)/.installed-all
	$(BIN)/mypy

docs: $(VENV)/.installed-all
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# setuptools<81: tensorflow-hub (the [tfhub] extra) imports pkg_resources.
$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip "setuptools<81" wheel

# An editable install of the checkout with one extra; redone when pyproject.toml changes.
$(VENV)/.installed-%: pyproject.toml | $(BIN)/python
	$(PIP) install --quiet -e ".[$*]"
	touch $@

# As root on Debian, apt-get installs the missing ones; otherwise it says what is missing.
system-packages:
	@missing=""; \
	for p in $(SYSTEM_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	  echo "installing system packages:$$missing"; \
	  DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	else \
	  echo "make test: the browser and Ray tests need these system packages:$$missing" \
	       "(as root: apt-get install$$missing)" >&2; \
	fi
