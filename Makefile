# ippam: `make run` starts the dashboard on the embedded defaults, `make test` runs the gate.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export DEBUG ?= true
export PYTHONUNBUFFERED := 1

.PHONY: run test install lint fmt typecheck gate pytest bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@mkdir -p var
	$(BIN)/python manage.py preflight
	$(BIN)/python manage.py migrate --no-input -v 0
	$(BIN)/python manage.py ensure_roles
	$(BIN)/python manage.py ensure_admin
	$(BIN)/python manage.py demo_cluster --if-none
	$(BIN)/honcho -f Procfile.dev start

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

fmt: $(STAMP)
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

typecheck: $(STAMP)
	$(BIN)/mypy

# The one gate: what CI runs, what every change must pass.
test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python manage.py check
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(BIN)/python bench/run.py

clean:
	rm -rf var db.sqlite3 db.sqlite3-wal db.sqlite3-shm screenshots
