#!/usr/bin/env bash
# Controller memory of kai on the peers fleet (issue 15): runs W4 once (its three
# versions, as the harness does, after `peers.py reset w4`) and samples, every 50 ms,
# the memory of kai and of the ssh master processes it started. Those masters are
# daemons, so the harness's RSS column (the largest single process of the adapter's
# tree) does not see them. Prints the peaks: kai's RSS, the masters' count, their RSS
# summed (shared pages counted once per process) and their PSS summed (shared pages
# divided among the processes sharing them: what they really cost together).
#
#   cp bench/peers/kai.sh bench/peers/kai-memory.sh <bench copy>/adapters/
#   cd <bench copy> && PEERS_HOSTS=100 KAI_REPO=<kai checkout> adapters/kai-memory.sh
set -uo pipefail
# shellcheck source=/dev/null
source "${PEERS_DIR:-$(dirname "$0")/..}/lib/env.sh"
adapter=$(dirname "$0")/kai.sh
sockets="-S ${KAI_BENCH_DIR:-$PEERS_SCRATCH/kai}/cache/kai/ssh/"

mapfile -t versions < <("$PEERS_PY" -c 'import os, sys; sys.path.insert(0, os.path.join(os.environ["PEERS_DIR"], "harness")); import peers; print(*peers.invocations("w4"), sep="\n")')
"$PEERS_PY" "$PEERS_DIR/harness/peers.py" reset w4 >/dev/null || exit 1
hosts=$(wc -l < "$PEERS_STATE/hosts.txt")

kb() { # FIELD PID...: the field (VmRSS, Pss) of each process, summed, in kB
  local field=$1 sum=0 pid value
  shift
  for pid in "$@"; do
    if [[ $field == Pss ]]; then
      value=$(awk '/^Pss:/ {print $2}' "/proc/$pid/smaps_rollup" 2>/dev/null)
    else
      value=$(awk -v f="$field:" '$1 == f {print $2}' "/proc/$pid/status" 2>/dev/null)
    fi
    sum=$((sum + ${value:-0}))
  done
  echo "$sum"
}

start=$(date +%s%N)
(for v in "${versions[@]}"; do "$adapter" w4 "$v" >/dev/null || exit 1; done) &
runner=$!
peak_kai=0 peak_n=0 peak_rss=0 peak_pss=0
while kill -0 "$runner" 2>/dev/null; do
  mapfile -t kai_pids < <(pgrep -x kai)
  mapfile -t ssh_pids < <(pgrep -f -- "$sockets")
  k=$(kb VmRSS "${kai_pids[@]}")
  ((k > peak_kai)) && peak_kai=$k
  ((${#ssh_pids[@]} > peak_n)) && peak_n=${#ssh_pids[@]}
  r=$(kb VmRSS "${ssh_pids[@]}")
  ((r > peak_rss)) && peak_rss=$r
  p=$(kb Pss "${ssh_pids[@]}")
  ((p > peak_pss)) && peak_pss=$p
  sleep 0.05
done
wait "$runner"
rc=$?
end=$(date +%s%N)
awk -v h="$hosts" -v s=$(((end - start) / 1000000)) -v k="$peak_kai" -v n="$peak_n" -v r="$peak_rss" -v p="$peak_pss" -v rc="$rc" 'BEGIN {
  printf "kai W4 on %d hosts (exit %d, %.2f s with sampling): kai peak RSS %.1f MB; %d ssh masters, peak RSS %.1f MB summed, PSS %.1f MB summed (%.2f MB a host)\n",
    h, rc, s / 1000, k / 1024, n, r / 1024, p / 1024, p / 1024 / h }'
exit "$rc"
