# One entry point per job; each installs what it needs (uv, then the locked dependencies).
UV := ./scripts/uv

.PHONY: install serve test lint schema

install:
	$(UV) sync --frozen

serve: install
	$(UV) run --frozen onboarding-kpi serve

test: install
	npm ci --prefix tests/http_audit --no-audit --no-fund --loglevel=error
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen mypy

schema: install
	$(UV) run --frozen onboarding-kpi export-schema --output schema.graphql
