# The two commands of the README: `make run` and `make test`. Everything else is for developers and CI.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.komu-installed
TEST_ENV := KOMU_VAR_DIR=$(CURDIR)/var/test

.PHONY: run test install lint bench lock messages test-replica security

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --require-hashes --no-deps -r requirements.lock
	$(BIN)/python -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/komu migrate --noinput
	$(BIN)/komu demo --if-empty
	$(BIN)/komu demo logins
	@# The background worker (imports, reminders) runs beside the server and stops with it.
	$(BIN)/komu db_worker --no-reload & worker=$$!; trap 'kill $$worker 2>/dev/null' EXIT INT TERM; \
		$(BIN)/komu runserver 127.0.0.1:8000

test: install
	$(BIN)/ruff check komu tests bench
	$(TEST_ENV) $(BIN)/mypy komu
	$(TEST_ENV) $(BIN)/python -m pytest $(PYTEST_ARGS)

# Production shape on loopback: its own PostgreSQL 15 primary + standby (replica routing, backup/restore, faults).
test-replica: install
	KOMU_TEST_CLUSTERS=1 $(TEST_ENV) $(BIN)/python -m pytest -m "clusters or browser" komu/ops/tests tests/browser/test_operations.py $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check komu tests bench
	$(BIN)/ruff format --check komu tests bench
	$(TEST_ENV) $(BIN)/mypy komu

bench: install
	$(BIN)/python -m bench

# Regenerate the lock after changing dependencies in pyproject.toml (needs pip-tools in the venv).
lock: install
	$(BIN)/python -m pip install --quiet pip-tools
	$(BIN)/pip-compile --quiet --extra dev --generate-hashes --allow-unsafe --strip-extras -o requirements.lock pyproject.toml

# Refresh the English catalogue (msgids are the Japanese text) and compile it; translate new entries in between.
messages: install
	cd komu && KOMU_VAR_DIR=$(CURDIR)/var/messages ../$(BIN)/komu makemessages -l en --no-obsolete \
		--ignore 'static/vendor/*' --ignore 'tests/*' --ignore '*/tests/*' --ignore '*/locale'
	msgfmt --check -o komu/locale/en/LC_MESSAGES/django.mo komu/locale/en/LC_MESSAGES/django.po

# Security checks: bandit (new findings), pip-audit (known vulnerabilities; says so when it cannot reach its
# service) and a bounded sqlmap run against a demo server on loopback. Findings: docs/security.md.
security: install
	.ci/security
