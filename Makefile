# The two commands of the README. Both work on a fresh machine with rustup: they add the
# wasm32-wasip2 target themselves, build the guest components from source, and use cargo's
# dev profile (dependencies optimised, see Cargo.toml) so the demo and the tests share one build.

GUESTS := example-hooks/target/wasm32-wasip2/release
HOST := target/debug/host
SAMPLES := example-hooks/samples
DEMO := demo-out

.PHONY: demo test guests host target

## The main job: build the example hooks and the host, then run each hook on its sample batch.
demo: guests host
	rm -rf $(DEMO)
	$(HOST) run $(GUESTS)/text_stats.wasm --input $(SAMPLES)/text.jsonl --out $(DEMO)/text_stats
	$(HOST) run $(GUESTS)/file_profile.wasm --input $(SAMPLES)/files.jsonl \
		--files $(SAMPLES)/files --out $(DEMO)/file_profile
	$(HOST) run $(GUESTS)/require_fields.wasm --input $(SAMPLES)/require.jsonl \
		--config @$(SAMPLES)/require-config.json --out $(DEMO)/require_fields
	$(HOST) run $(GUESTS)/memory_hungry.wasm --input $(SAMPLES)/memory.jsonl \
		--memory 32MiB --out $(DEMO)/memory_hungry
	@echo
	@echo "Features of the text_stats run ($(DEMO)/text_stats/features.jsonl):"
	@head -n 3 $(DEMO)/text_stats/features.jsonl
	@echo "Provenance of each run: $(DEMO)/<hook>/run.json"

## The tests: unit tests, SDK tests and doc tests, and the integration tests under tests/
## (which build the example hooks and fixtures from source on first use).
test: target
	cargo test --workspace

guests: target
	cargo build --release --target wasm32-wasip2 --workspace --manifest-path example-hooks/Cargo.toml

host:
	cargo build -p hookhost --bin host

target:
	rustup target add wasm32-wasip2
