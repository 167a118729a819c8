#!/usr/bin/env bash
# Benchmark: wall time of `kubectl apply -f DIR` with 200 objects (100 ConfigMaps, 50 Deployments,
# 50 Services) against `sluice up`: the first apply (creates), a second (all unchanged), and a
# server-side apply of the same directory.
# Prints numbers; never fails on time.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v kubectl >/dev/null || { echo "bench-kubectl-apply: no kubectl on PATH" >&2; exit 2; }
cargo build --release --locked -q -p sluice
work=$(mktemp -d)
cleanup() { [[ -n "${up:-}" ]] && kill "$up" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
./target/release/sluice up --data-dir "$work/data" --listen 127.0.0.1:0 --ingress-listen off \
  >"$work/ready" 2>"$work/log" &
up=$!
for _ in $(seq 100); do grep -q ready "$work/ready" 2>/dev/null && break; sleep 0.1; done
export KUBECONFIG="$work/data/kubeconfig" KUBECACHEDIR="$work/cache"
mkdir "$work/manifests"
for i in $(seq 100); do
  printf 'apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm-%s}\ndata: {index: "%s"}\n' "$i" "$i" >"$work/manifests/cm-$i.yaml"
done
for i in $(seq 50); do
  cat >"$work/manifests/app-$i.yaml" <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: app-$i}
spec:
  replicas: 1
  selector: {matchLabels: {app: app-$i}}
  template:
    metadata: {labels: {app: app-$i}}
    spec: {containers: [{name: app, image: "nginx:1.25"}]}
---
apiVersion: v1
kind: Service
metadata: {name: app-$i}
spec:
  selector: {app: app-$i}
  ports: [{port: 80}]
YAML
done
# Wall time, then kubectl's own CPU time (client-side apply parses the group-version's OpenAPI
# document for every object, so that part grows with the document, not with the server).
TIMEFORMAT='%3R s (kubectl CPU %3U s)'
first=$( { time kubectl apply -f "$work/manifests" >/dev/null; } 2>&1 )
second=$( { time kubectl apply -f "$work/manifests" >/dev/null; } 2>&1 )
server=$( { time kubectl apply --server-side -f "$work/manifests" >/dev/null; } 2>&1 )
echo "kubectl apply -f of 200 objects against sluice up ($(kubectl version --client -o json | grep -m1 gitVersion | tr -d ' ",')):"
echo "  creating:    ${first}"
echo "  unchanged:   ${second}"
echo "  server-side: ${server}"
