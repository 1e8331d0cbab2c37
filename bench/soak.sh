#!/usr/bin/env bash
# The chaos soak: DEPLOYS (default 100) consecutive rolling deploys under load behind a
# real HAProxy, over a real sshd, with a random fault in about one in three (sshd
# killed, HAProxy reloaded, a failing release, a host's disk full, kai killed with
# SIGKILL or SIGTERM and run again). Needs root (small tmpfs disks), sshd and HAProxy
# (scripts/test.sh installs them). The figures go to bench/results/soak-<date>.txt.
#
#   bench/soak.sh [DEPLOYS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
export KAI_SOAK_DEPLOYS=${1:-100}
[ -n "${2:-}" ] && export KAI_SOAK_SEED=$2
cargo test -p kai --test soak -- --ignored --nocapture
mkdir -p bench/results
out=bench/results/soak-$(date -u +%Y-%m-%d).txt
cp target/soak.txt "$out"
echo "figures: $out"
