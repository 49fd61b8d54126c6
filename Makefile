# Shortcuts for developers; the scripts are the source of truth.
.PHONY: setup test demo bench
setup:
	scripts/setup
test:
	scripts/test
demo:
	scripts/demo
bench:
	scripts/setup --bench && .venv/bin/python bench/run.py
