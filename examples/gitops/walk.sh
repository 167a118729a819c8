#!/usr/bin/env bash
# The GitOps loop on `sluice up`: a local CD repository with the user's four files (and a
# ConfigMap in wave -1), registered as an Application; then commit → preview → promote →
# revert → back. Needs `sluice up` running, KUBECONFIG set, `sluice`, `kubectl`, `git`, `curl`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=${CD_REPO:-$(mktemp -d /tmp/sluice-gitops-cd.XXXXXX)}
ingress=${INGRESS:-127.0.0.1:8080}
say() { printf '\n== %s\n' "$*"; }
production() { curl -s -H 'Host: gitops-demo.local' "http://$ingress/color"; echo; }

say "a CD repository in $repo"
cp "$here"/cd/*.yaml "$repo"/
git -C "$repo" init -q && git -C "$repo" add -A && git -C "$repo" commit -qm blue

say "register it"
sed "s|REPO|$repo|" "$here/application.yaml" | kubectl apply -f -
sluice app wait gitops-demo --timeout 120s
production                                                   # blue

say "commit a new image tag: synced, a new ReplicaSet behind the preview, paused"
sed -i 's/rollouts-demo:blue/rollouts-demo:yellow/' "$repo/rollout.yaml"
git -C "$repo" commit -qam yellow
sluice app wait gitops-demo --sync --suspended --timeout 120s
sluice app get gitops-demo                                   # Synced, Suspended; operation Succeeded
kubectl get rs -n gitops-demo
production                                                   # still blue

say "promote: production moves to the new version"
sluice app actions run gitops-demo promote-full --kind Rollout   # or: sluice promote rollouts-demo -n gitops-demo
sluice app wait gitops-demo --health --timeout 120s
production                                                   # yellow

say "git revert: the Rollout goes back (at once, inside the 30 s scale-down delay)"
git -C "$repo" revert --no-edit HEAD
sleep 1
sluice app wait gitops-demo --sync --timeout 120s
kubectl wait --for=condition=Healthy rollout/rollouts-demo -n gitops-demo --timeout=120s
production                                                   # blue
sluice app history gitops-demo

say "done: sluice app delete gitops-demo (cascades) removes it all"
