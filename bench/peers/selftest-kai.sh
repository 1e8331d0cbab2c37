#!/usr/bin/env bash
# Self-test of the kai adapter in a copy of the peers bench (the bench's own
# selftest.sh runs all four workloads and checks failure on W2; the kai adapter
# does W1 and W4 only, so this is its equivalent):
#   bench/peers/selftest-kai.sh [BENCH_COPY]      (default /tmp/kai-bench)
# 1. positive: W1 and W4 once through harness/bench.py (W4 verified on disk)
# 2. negative W1: host h03's root is a plain file, so the command fails there:
#    the adapter must exit non-zero
# 3. negative W4: h03's `downloads` is a plain file, so staging fails there:
#    the adapter must exit non-zero, and (kai stages everywhere before it switches
#    anything) no host may have changed: current -> r0005 everywhere, no r0006,
#    no temporary folder, no lock left
set -uo pipefail
copy=${1:-/tmp/kai-bench}
here=$(cd "$(dirname "$0")" && pwd)
cp "$here/kai.sh" "$copy/adapters/kai.sh"
source "$copy/lib/env.sh"
cd "$PEERS_DIR"
fail=0 bad=h03 root=/tmp/benchhosts/$bad

"$PEERS_PY" harness/bench.py --tools kai --workloads w1,w4 --runs 1 --warmup 0 --extra "" \
  --out "$PEERS_SCRATCH/selftest-kai" > "$PEERS_SCRATCH/selftest-kai.log" 2>&1 \
  || { cat "$PEERS_SCRATCH/selftest-kai.log"; exit 1; }
grep -E '^w[0-9] ' "$PEERS_SCRATCH/selftest-kai.log"
grep -qE '^w[0-9] .* FAIL' "$PEERS_SCRATCH/selftest-kai.log" && fail=1

# negative W1
mv "$root" "$root.selftest" && touch "$root"
if adapters/kai.sh w1 > "$PEERS_SCRATCH/selftest-kai-neg-w1.log" 2>&1; then
  echo "NEGATIVE FAIL: kai w1 exited 0 although $bad failed"; fail=1
else
  echo "negative ok: kai w1 exited non-zero for the failing host: $(grep "^$bad" "$PEERS_SCRATCH/selftest-kai-neg-w1.log" | head -1)"
fi
rm -f "$root" && mv "$root.selftest" "$root"

# negative W4
"$PEERS_PY" harness/peers.py reset w4
touch "$root/w4/downloads"
if adapters/kai.sh w4 r0006 > "$PEERS_SCRATCH/selftest-kai-neg-w4.log" 2>&1; then
  echo "NEGATIVE FAIL: kai w4 exited 0 although $bad failed"; fail=1
else
  changed=0
  for h in $(cat "$PEERS_STATE/hosts.txt"); do
    app=/tmp/benchhosts/$h/w4
    [[ $(readlink "$app/current") == releases/r0005 ]] || { echo "  $h: current moved"; changed=1; }
    [[ -z $(ls -A "$app/releases" | grep -v '^r000[1-5]$') ]] || { echo "  $h: releases: $(ls -A "$app/releases" | tr '\n' ' ')"; changed=1; }
    [[ ! -e $app/.kai/lock ]] || { echo "  $h: lock left"; changed=1; }
  done
  if ((changed)); then echo "NEGATIVE FAIL: kai w4 changed hosts although staging failed on $bad"; fail=1
  else echo "negative ok: kai w4 exited non-zero for the failing host, no host changed, no lock left"; fi
fi
"$PEERS_PY" harness/peers.py reset w4 && "$PEERS_PY" harness/peers.py close-masters
((fail == 0)) && echo "selftest passed (W4 positive: see the note on incoming/ in bench/README.md)" || { echo "selftest FAILED"; exit 1; }
