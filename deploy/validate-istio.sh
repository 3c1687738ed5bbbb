#!/usr/bin/env bash
# validate-istio.sh KUSTOMIZE ISTIOANALYZE
#
# Istio's analyzers, all of them, offline (make validate-istio): for each
# overlay applied with ../istio (dev, prod, gpu), the overlay and istio/ are
# built with kustomize and handed to istioanalyze (deploy/istioanalyze: the
# analyzer packages of istioctl analyze, fed stand-in pods built from the
# rendered pod templates, and the ingress gateway's pod, Service and
# certificate, so that the analyzers that need a cluster run too). Exits
# non-zero on any warning or error.
set -euo pipefail

[[ $# -eq 2 ]] || { echo "usage: $0 KUSTOMIZE ISTIOANALYZE" >&2; exit 2; }
kustomize=$(realpath "$1") analyze=$(realpath "$2")
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$kustomize" build istio >"$out/istio.yaml"
status=0
for overlay in dev prod gpu; do
  "$kustomize" build "deploy/overlays/$overlay" >"$out/$overlay.yaml"
  echo "istio analyzers over deploy/overlays/$overlay and istio:"
  "$analyze" "$out/$overlay.yaml" "$out/istio.yaml" | sed "s|$out/||g" || status=1
done
exit $status
