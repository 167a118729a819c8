#!/usr/bin/env bash
# The test command: everything CI checks, runnable on a fresh machine with the Rust toolchain.
# Usage: scripts/test.sh            (from anywhere inside the repository)
set -euo pipefail
cd "$(dirname "$0")/.."

# Argo's compatibility corpus lives beside the repository (../shared); tests read it.
if [[ ! -d ../shared/compat/argo-rollouts && -z "${SLUICE_SHARED_DIR:-}" ]]; then
  echo "test.sh: ../shared/compat is missing; set SLUICE_SHARED_DIR to the shared folder" >&2
  exit 2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# nextest (on every machine of this project) runs test binaries in parallel and ends with one
# summary line; plain `cargo test` is the fallback.
if cargo nextest --version >/dev/null 2>&1; then
  echo "== cargo nextest run"
  cargo nextest run --workspace --locked --no-fail-fast
else
  echo "== cargo test (cargo-nextest not found)"
  cargo test --workspace --locked --no-fail-fast
fi
