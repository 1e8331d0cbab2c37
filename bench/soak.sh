#!/usr/bin/env bash
# The chaos soak: DEPLOYS (default 100) consecutive rolling deploys under load behind a
# real HAProxy, over a real sshd, with a random fault in about one in three (sshd
# killed, HAProxy reloaded, a failing release, a host's disk full, kai killed with
# SIGKILL or SIGTERM and run again). Needs root (small tmpfs disks), sshd and HAProxy
# (scripts/test.sh installs them). Each SEED is one run of its own (default: the
# soak's own seed); it prints the seed and every round with its fault, so a failure
# is replayed with `bench/soak.sh DEPLOYS SEED`. The figures of every run go to
# bench/results/soak-<date>.txt.
#
#   bench/soak.sh [DEPLOYS] [SEED...]
set -euo pipefail
cd "$(dirname "$0")/.."
export KAI_SOAK_DEPLOYS=${1:-100}
shift || true
seeds=("$@")
((${#seeds[@]})) || seeds=("")
mkdir -p bench/results
out=bench/results/soak-$(date -u +%Y-%m-%d).txt
for seed in "${seeds[@]}"; do
    if [ -n "$seed" ]; then export KAI_SOAK_SEED=$seed; else unset KAI_SOAK_SEED; fi
    cargo test -p kai --test soak -- --ignored --nocapture
    cat target/soak.txt >> "$out"
done
echo "figures: $out"
