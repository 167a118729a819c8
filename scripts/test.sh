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

# The `kubectl exec -it` test gives kubectl a terminal with util-linux's `script` (Debian's
# bsdutils, essential there, so normally present).
if ! command -v script >/dev/null; then
  echo "== installing util-linux script (bsdutils)"
  sudo=$([[ $(id -u) -eq 0 ]] || echo sudo)
  $sudo apt-get install -y --no-install-recommends bsdutils >/dev/null
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy (warnings are errors)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# One process per test binary (plain `cargo test`, not nextest), so each binary starts one
# embedded cluster and shares it between its tests (DESIGN §6). Doctests and benches are not
# run here; the summary line at the end counts every test that ran.
echo "== cargo test"
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --workspace --locked --no-fail-fast --lib --bins --tests 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
awk '/^test result:/ { for (i = 1; i <= NF; i++) { if ($i ~ /^passed/) p += $(i-1); if ($i ~ /^failed/) f += $(i-1) } }
     END { printf "tests: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
