#!/usr/bin/env bash
# validate.sh KUSTOMIZE KUBERNETES_VALIDATE VERSION...
#
# The stock validators of the manifests (make validate runs this with the
# pinned tools): the kustomize CLI builds every kustomization under deploy/
# and istio/ (components are built by the overlays that use them), and
# kubernetes-validate checks every object of every build, and the loose
# manifests, strictly (unknown fields are errors) against the API of each
# Kubernetes VERSION. It has no schemas for custom resources: those it
# skips, and only for the API groups listed below, whose objects
# deploy/manifeststest decodes strictly into their upstream Go types; a
# missing schema for any other kind is an error. Prints one line per build
# and version; exits non-zero on any error.
set -euo pipefail

[[ $# -ge 3 ]] || { echo "usage: $0 KUSTOMIZE KUBERNETES_VALIDATE VERSION..." >&2; exit 2; }
kustomize=$(realpath "$1") validate=$(realpath "$2")
shift 2
cd "$(dirname "${BASH_SOURCE[0]}")/.."

custom='argoproj.io|monitoring.coreos.com|serving.knative.dev|autoscaling.k8s.io|networking.istio.io|security.istio.io'
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

files=()
while read -r k; do
  dir=$(dirname "$k")
  grep -q '^kind: Component' "$k" && continue
  f=$out/$(tr / _ <<<"$dir").yaml
  if ! "$kustomize" build "$dir" >"$f"; then
    echo "kustomize build $dir: FAILED" >&2
    exit 1
  fi
  echo "kustomize build $dir: $(grep -c '^kind:' "$f") objects"
  files+=("$f")
done < <(find deploy istio -name kustomization.yaml -not -path '*/manifeststest/*' | sort)
files+=(deploy/components/training/workflow.yaml)

status=0
for v in "$@"; do
  log=$out/validate-$v.log
  rc=0
  "$validate" --strict -k "$v" "${files[@]}" >"$log" 2>&1 || rc=$?
  passed=$(grep -c '^INFO .* passed for resource' "$log" || true)
  skipped=$(grep -Ec "^WARN .*Couldn't find schema for kind [A-Za-z]+ with api version ($custom)/" "$log" || true)
  # Anything else: errors, and warnings about kinds that should have a schema.
  other=$(grep -v '^INFO .* passed for resource' "$log" | grep -Ev "^WARN .*Couldn't find schema for kind [A-Za-z]+ with api version ($custom)/" || true)
  echo "kubernetes-validate --strict -k $v: $passed objects valid, $skipped custom resources left to deploy/manifeststest"
  if [[ $rc -ne 0 || -n $other ]]; then
    echo "$other" | sed "s|$out/||" >&2
    status=1
  fi
done
exit $status
