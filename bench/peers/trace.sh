#!/usr/bin/env bash
# Where a tool's W4 time goes: logs every remote command the hosts run (a line
# prepended to the sessions' stub ~/.bashrc: time, command), runs the three W4
# invocations once from a reset, restores the .bashrc, and prints per invocation
# the remote commands and, for kai, the phases (first..last start, relative to
# the invocation's start). Not for timing runs: the log line costs every command.
#   bench/peers/trace.sh [TOOL] [BENCH_COPY]     (default: kai /tmp/kai-bench)
set -uo pipefail
tool=${1:-kai} copy=${2:-/tmp/kai-bench}
# shellcheck source=/dev/null
source "$copy/lib/env.sh"
cd "$PEERS_DIR" || exit 2
rc=$PEERS_SCRATCH/home/.bashrc log=$PEERS_SCRATCH/trace-$tool.log
[[ -f $rc ]] || { echo "no $rc: run setup.sh" >&2; exit 2; }
cp "$rc" "$rc.orig"
trap 'mv -f "$rc.orig" "$rc"' EXIT
{ printf '%s\n' 'printf "%s %s\n" "$EPOCHREALTIME" "${BASH_EXECUTION_STRING//$'"'"'\n'"'"'/\\n}" >> '"$log"; cat "$rc.orig"; } > "$rc"
rm -f "$log"
"$PEERS_PY" harness/peers.py reset w4
spans=()
for v in $("$PEERS_PY" -c 'import sys; sys.path.insert(0, "harness"); import peers; print(*peers.invocations("w4"))'); do
  s=$(date +%s.%N); "adapters/$tool.sh" w4 "$v" > "$PEERS_SCRATCH/trace-$tool-$v.out" 2>&1; st=$?; e=$(date +%s.%N)
  spans+=("$v:$s:$e:$st")
done
"$PEERS_PY" harness/peers.py close-masters
python3 - "$log" "${spans[@]}" <<'PY'
import collections, re, sys
events = []
for line in open(sys.argv[1]):
    t, _, cmd = line.rstrip("\n").partition(" ")
    events.append((float(t), cmd))
RULES = [("probe", r"kai-probe"), ("lock", r"mkdir -p \.kai$|mkdir \.kai/lock|\.kai/lock/owner"),
         ("prepare", r"mkdir -p releases downloads"), ("fetch (upload)", r"kai-upload"),
         ("verify", r"sum --check"), ("unpack", r"mkdir -p releases/\.tmp|unzip|tar -|find releases/\.tmp"),
         ("properties", r"app\.properties"), ("prune", r"rm -rf releases/[^.]|rm -f \.kai/checksums"),
         ("install", r"mv -T releases|\.kai/checksums/|rm -f downloads"),
         ("roll (serial)", r"&& true$|current\.tmp|cd current"), ("history", r"history\.jsonl"),
         ("unlock", r"rm -rf \.kai/lock")]
def phase(cmd):
    return next((n for n, rx in RULES if re.search(rx, cmd)), "other")
for span in sys.argv[2:]:
    v, s, e, st = span.split(":")
    s, e = float(s), float(e)
    ev = sorted((t, c) for t, c in events if s <= t <= e)
    hosts = {m.group(1) for _, c in ev for m in [re.search(r"benchhosts/(h\d+)", c)] if m}
    print(f"{v}: {e - s:.3f} s, exit {st}, {len(ev)} remote commands on {len(hosts)} hosts "
          f"({len(ev) / max(1, len(hosts)):.0f} per host); first at +{ev[0][0] - s:.3f} s, last at +{ev[-1][0] - s:.3f} s")
    per = collections.OrderedDict()
    for t, c in ev:
        d = per.setdefault(phase(c), [t, t, 0])
        d[1], d[2] = t, d[2] + 1
    for p, (a, b, n) in per.items():
        print(f"    {p:15s} {n:4d} commands ({n / max(1, len(hosts)):.0f}/host)  +{a - s:.3f} .. +{b - s:.3f} s")
PY
