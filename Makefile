# Developer shortcuts (after `bash scripts/setup.sh`); CI runs the tests through .ci/run.
PY := .venv/bin/python

.PHONY: lint format type pytest commit-checks

lint:
	$(PY) -m ruff check .

format:
	$(PY) -m ruff format tfgym reward_models agents tests benchmarks examples

type:
	$(PY) -m mypy tfgym reward_models agents

pytest:
	$(PY) -m pytest

commit-checks: lint type pytest
