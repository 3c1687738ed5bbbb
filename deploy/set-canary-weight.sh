#!/usr/bin/env bash
# set-canary-weight.sh WEIGHT [FILE]
#
# The manual model canary, for clusters without the training component's
# automatic one (the dev overlay): gives the experiment's treatment arm
# WEIGHT percent of users and control the rest, by rewriting the two
# weights of the experiment file (default: deploy/base/experiment.json, the
# ranking-experiment ConfigMap). The experiment is the one place the split
# lives; users are assigned by a hash of (salt, user id) against the
# weights in file order, control first, so the users in treatment at 5%
# stay in it at 25 and 50%. WEIGHT is an integer from 1 to 99: to give the
# candidate everyone, pin control to its version too (promotion); to roll
# back, pin treatment to control's version. Apply with
#   kubectl apply -k deploy/overlays/dev
# (ranking re-reads the file; no restart). Nothing is written unless the
# file has exactly one control and one treatment arm, control first, each
# on one line with its weight. See deploy/README.md, "Rollout".
set -euo pipefail

usage() { echo "usage: $0 WEIGHT [FILE]   (WEIGHT: integer 1..99, the percent of users in treatment)" >&2; exit 2; }

[[ $# -ge 1 && $# -le 2 ]] || usage
weight=$1
if [[ ! $weight =~ ^[0-9]{1,2}$ ]] || ((10#$weight < 1)); then
  echo "$0: weight '$weight' is not an integer from 1 to 99" >&2
  usage
fi
weight=$((10#$weight))
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
file=${2:-$here/base/experiment.json}

tmp=$(mktemp "${TMPDIR:-/tmp}/experiment.XXXXXX")
trap 'rm -f "$tmp"' EXIT

awk -v w="$weight" -v file="$file" '
  /"name":[[:space:]]*"control"/ {
    control++
    if (treatment) order = 1
    if (!sub(/"weight":[[:space:]]*[0-9.]+/, "\"weight\": " (100 - w))) bad = 1
  }
  /"name":[[:space:]]*"treatment"/ {
    treatment++
    if (!sub(/"weight":[[:space:]]*[0-9.]+/, "\"weight\": " w)) bad = 1
  }
  { print }
  END {
    if (control != 1 || treatment != 1 || order || bad) {
      printf "%s: want one control and then one treatment arm, each on one line with its weight; found %d control, %d treatment%s\n", file, control, treatment, order ? " (treatment first)" : "" > "/dev/stderr"
      exit 1
    }
  }' "$file" >"$tmp"

cat "$tmp" >"$file" # keeps the file's mode and links
echo "experiment: control $((100 - weight))%, treatment ${weight}% in $file"
