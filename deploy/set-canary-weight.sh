#!/usr/bin/env bash
# set-canary-weight.sh WEIGHT [FILE...]
#
# Sends WEIGHT percent of ranking traffic to the candidate (subset v2) and
# the rest to v1, by rewriting the two weights of every route named
# ranking-canary in the given files (default: istio/ranking.yaml, the mesh
# routes, and istio/gateway.yaml, the public ones). WEIGHT is an integer
# from 0 to 100. Nothing is written unless every file has such a route with
# exactly one v1 and one v2 weight. Apply the result with
#   kubectl apply -k istio
# See deploy/README.md for the rollout steps (5, 25, 50, 100) and rollback
# (0).
set -euo pipefail

usage() { echo "usage: $0 WEIGHT [FILE...]   (WEIGHT: integer 0..100, the percent sent to v2)" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
weight=$1
shift
if [[ ! $weight =~ ^[0-9]{1,3}$ ]] || ((10#$weight > 100)); then
  echo "$0: weight '$weight' is not an integer from 0 to 100" >&2
  usage
fi
weight=$((10#$weight))

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ $# -eq 0 ]]; then
  set -- "$here/../istio/ranking.yaml" "$here/../istio/gateway.yaml"
fi

tmps=()
cleanup() { rm -f "${tmps[@]}"; }
trap cleanup EXIT

# Rewrite each file into a temporary one first; replace them only if all
# succeeded.
for f in "$@"; do
  tmp=$(mktemp "${f}.XXXXXX")
  tmps+=("$tmp")
  if ! awk -v w="$weight" -v file="$f" '
    # An http route starts with "- name:"; only ranking-canary routes change.
    /^[[:space:]]*- name:[[:space:]]/ {
      in_canary = ($0 ~ /- name:[[:space:]]+ranking-canary[[:space:]]*$/)
      if (in_canary) routes++
      subset = ""
    }
    in_canary && /^[[:space:]]*subset:[[:space:]]*v[12][[:space:]]*$/ {
      subset = $2
    }
    in_canary && subset != "" && /^[[:space:]]*weight:[[:space:]]*[0-9]+[[:space:]]*$/ {
      value = (subset == "v1") ? 100 - w : w
      sub(/[0-9]+/, value)
      seen[subset]++
      subset = ""
    }
    { print }
    END {
      if (routes == 0 || seen["v1"] != routes || seen["v2"] != routes) {
        printf "%s: want one v1 and one v2 weight in each ranking-canary route; found %d route(s), %d v1 and %d v2 weight(s)\n", file, routes, seen["v1"], seen["v2"] > "/dev/stderr"
        exit 1
      }
    }' "$f" >"$tmp"; then
    exit 1
  fi
done

i=0
for f in "$@"; do
  cat "${tmps[$i]}" >"$f" # keeps the file's mode and links
  i=$((i + 1))
done
tmps=()
echo "ranking canary: v1 $((100 - weight))%, v2 ${weight}% in $*"
