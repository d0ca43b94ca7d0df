# lifeboat: `make demo` and `make test` work on a fresh machine (they run scripts/setup.sh,
# which installs what is missing and caches tool builds under ~/.cache/lifeboat).
SHELL := /bin/bash
TOOLS := $(HOME)/.cache/lifeboat/bin
export PATH := $(TOOLS):$(HOME)/.cargo/bin:$(PATH)

.PHONY: setup test demo crds lint fmt

setup:
	@bash scripts/setup.sh

## Every check CI runs: formatting, clippy with warnings as errors, every test.
test: setup
	cargo fmt --all --check
	cargo clippy --workspace --all-targets --locked -- -D warnings
	@if cargo nextest --version >/dev/null 2>&1; then \
		cargo nextest run --workspace --locked --no-fail-fast; \
	else \
		cargo test --workspace --locked --no-fail-fast; \
	fi

## The end-to-end demo (kube-sandbox, real PostgreSQL, garage, a failover under shop load).
demo: setup
	@bash scripts/demo.sh

## Regenerate crds/ and the chart's copy from the Rust types (a test fails when they drift).
crds:
	cargo run -q -p lifeboat -- crd --out-dir crds
	rm -f charts/lifeboat/files/crds/*.yaml
	cp crds/*.yaml charts/lifeboat/files/crds/

fmt:
	cargo fmt --all

lint:
	cargo clippy --workspace --all-targets -- -D warnings
	helm lint --strict charts/lifeboat
