# ippam: `make run` starts the dashboard on the embedded defaults, `make test` runs the gate.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The locks: every package pinned with its hashes (linux, Python 3.11), made from
# pyproject.toml by `make lock`. Installs read them, so every machine gets the same versions.
LOCK_DEV := requirements/dev.txt
LOCK_PROD := requirements/prod.txt
UV_COMPILE = $(BIN)/uv pip compile pyproject.toml --quiet --generate-hashes \
	--python-version 3.11 --python-platform x86_64-unknown-linux-gnu \
	--custom-compile-command "make lock"
export DEBUG ?= true
export PYTHONUNBUFFERED := 1

.PHONY: run test install lock lint fmt typecheck gate pytest bench clean

# uv installs the lock in a few seconds where pip took over a minute. It is bootstrapped
# once with pip, pinned and hash-checked from the same lock; then `uv pip sync` makes the
# venv exactly the lock (hashes required) and adds ippam itself, editable.
UV := $(BIN)/uv
UV_PIP = $(UV) --quiet pip

$(UV):
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@sed -n '/^uv==/,/^    #/p' $(LOCK_DEV) | grep -v '^ *#' > $(VENV)/uv-lock.txt
	@$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --require-hashes \
		-r $(VENV)/uv-lock.txt >$(VENV)/pip.log 2>&1 || { cat $(VENV)/pip.log; exit 1; }

$(STAMP): $(LOCK_DEV) pyproject.toml | $(UV)
	@echo "installing requirements/dev.txt with uv"
	@$(UV_PIP) sync --python $(BIN)/python --require-hashes $(LOCK_DEV)
	@$(UV_PIP) install --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

install: $(STAMP)

# After changing dependencies in pyproject.toml: re-pin both locks (a gate test fails while
# pyproject.toml names a package the locks do not pin). Pins already in a lock are kept when
# they still fit; `rm requirements/*.txt` first to move everything to the newest releases.
lock: $(STAMP)
	$(UV_COMPILE) --extra dev -o $(LOCK_DEV)
	$(UV_COMPILE) -o $(LOCK_PROD)
	$(UV_PIP) sync --python $(BIN)/python --require-hashes $(LOCK_DEV)
	$(UV_PIP) install --python $(BIN)/python --no-deps -e .
	@touch $(STAMP)

# PORT: where the web process serves (honcho hands it to the first process, web). The
# worker, beat and watcher start a few seconds later (Procfile.dev), so the web process
# and the demo cluster have the two cores to themselves while they load.
PORT ?= 8000
# Each process says in one line that it is up; LOG_LEVEL=INFO shows what they do.
run: export LOG_LEVEL ?= WARNING

run: $(STAMP)
	@mkdir -p var
	@grep -qs '^IPPAM_METRICS_TOKEN=' .env || $(BIN)/python manage.py write_env
	@$(BIN)/python manage.py prepare
	@IPPAM_WEB_PORT=$(PORT) $(BIN)/honcho -f Procfile.dev start --port $(PORT)

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
