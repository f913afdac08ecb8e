# The two commands of the README. Both work on a fresh machine with rustup: they add the
# wasm32-wasip2 target themselves, build the guest components from source, and use cargo's
# dev profile (dependencies optimised, see Cargo.toml) so the demo and the tests share one build.

GUESTS := example-hooks/target/wasm32-wasip2/release
HOST := target/debug/host
SAMPLES := example-hooks/samples
INBOX := $(SAMPLES)/inbox
DEMO := demo-out
ROOT := $(DEMO)/registry

.PHONY: demo test guests host worker target postgres python js

## The main job: build the example hooks and the host, publish text_stats to a registry under
## demo-out/, run it by name and the other hooks from their files, list the runs, replay one;
## then publish require_fields, run both hooks over one batch, and run the example ingest
## worker over the sample inbox twice (the second pass finds every batch already done).
demo: guests host worker
	rm -rf $(DEMO)
	$(HOST) --root $(ROOT) publish $(GUESTS)/text_stats.wasm --name text_stats \
		--source-ref "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --built-by make-demo
	$(HOST) --root $(ROOT) run text_stats --input $(SAMPLES)/text.jsonl --out $(DEMO)/text_stats
	$(HOST) --root $(ROOT) run $(GUESTS)/file_profile.wasm --input $(SAMPLES)/files.jsonl \
		--files $(SAMPLES)/files --out $(DEMO)/file_profile
	$(HOST) --root $(ROOT) run $(GUESTS)/require_fields.wasm --input $(SAMPLES)/require.jsonl \
		--config @$(SAMPLES)/require-config.json --out $(DEMO)/require_fields
	$(HOST) --root $(ROOT) run $(GUESTS)/memory_hungry.wasm --input $(SAMPLES)/memory.jsonl \
		--memory 32MiB --out $(DEMO)/memory_hungry
	@echo
	$(HOST) --root $(ROOT) runs
	@echo
	$(HOST) --root $(ROOT) replay "$$($(HOST) --root $(ROOT) runs --hook text_stats --limit 1 \
		| awk 'NR == 2 { print $$1 }')" --input $(SAMPLES)/text.jsonl
	@echo
	@echo "Features of the text_stats run ($(DEMO)/text_stats/features.jsonl):"
	@head -n 3 $(DEMO)/text_stats/features.jsonl
	@echo "Provenance of each run: $(DEMO)/<hook>/run.json; the registry: $(ROOT)"
	@echo
	$(HOST) --root $(ROOT) publish $(GUESTS)/require_fields.wasm --name require_fields \
		--config @$(SAMPLES)/require-config.json \
		--source-ref "$$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" --built-by make-demo
	$(HOST) --root $(ROOT) run text_stats require_fields --input $(INBOX)/2026-11-22-0001.jsonl \
		--out $(DEMO)/batch
	@echo "Ids that passed both hooks ($(DEMO)/batch/passed.jsonl):"
	@head -n 3 $(DEMO)/batch/passed.jsonl
	@echo
	cargo run -q -p hookhost --example ingest_worker -- --root $(ROOT) \
		--hooks text_stats,require_fields --inbox $(INBOX) --outbox $(DEMO)/outbox
	@echo "The same inbox again: nothing runs twice."
	cargo run -q -p hookhost --example ingest_worker -- --root $(ROOT) \
		--hooks text_stats,require_fields --inbox $(INBOX) --outbox $(DEMO)/outbox

## The tests: unit tests, SDK tests and doc tests, and the integration tests under tests/
## (which build the example hooks and fixtures from source on first use). The registry's
## promises run on SQLite and on PostgreSQL: each test binary that needs it starts a throwaway
## cluster on a unix socket in a temporary directory (or uses HOOKHOST_TEST_POSTGRES). Then the
## Python SDK's own tests. The Python venv (componentize-py, pytest, pyarrow, pinned) and the
## Python example and fixture components are made first, from source, against the host's wit/;
## so are the JavaScript ones (componentize-js, pinned by example-hooks/js/package-lock.json).
test: target postgres python js
	cargo test --workspace
	HOOKHOST_TEST_COMPONENTS=$(CURDIR)/target/python-hooks $(MAKE) -C sdk/python test

## The Python SDK's virtual environment and the Python hooks in target/python-hooks/.
python:
	$(MAKE) -C sdk/python venv hooks

## The JavaScript tools (npm ci into target/js-tools/) and the JavaScript example and fixture
## hooks in target/js-hooks/. Needs Node.js 20.19 or later and npm, and fails saying so:
## tests/js_hooks.rs never skips.
js:
	$(MAKE) -C example-hooks/js tools hooks

## PostgreSQL's server binaries, for the tests' throwaway clusters: Debian's `postgresql`
## package, installed when /usr/lib/postgresql/*/bin/initdb is missing. When that fails, this
## fails loudly: the PostgreSQL tests never skip.
postgres:
	@if [ -n "$${HOOKHOST_TEST_POSTGRES:-}" ] || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
		exit 0; \
	fi; \
	echo "make: PostgreSQL server binaries missing; apt-get install -y postgresql"; \
	{ apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql; } || { \
		echo "make: could not install PostgreSQL, which the tests need: install Debian's" \
			"postgresql package, or set HOOKHOST_TEST_POSTGRES=postgres://user@host/db" >&2; \
		exit 1; \
	}; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { \
		echo "make: the postgresql package did not provide initdb" >&2; exit 1; }

guests: target
	cargo build --release --target wasm32-wasip2 --workspace --manifest-path example-hooks/Cargo.toml

host:
	cargo build -p hookhost --bin host

## The example ingest worker (host/examples/ingest_worker.rs), built before the demo runs it.
worker:
	cargo build -p hookhost --example ingest_worker

target:
	rustup target add wasm32-wasip2
