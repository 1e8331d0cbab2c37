#!/usr/bin/env bash
# Stops every demo service that demo/run.sh left running:
#
#   demo/stop.sh [<work>]      (default: target/kai-demo in the workspace)
#
# Runs bin/stop.sh in <work>/.kai/hosts/<host>/home/hello/current on each host, then in any
# other release that still has a pid file (left by an interrupted deploy).
set -euo pipefail

demo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
work=${1:-$(dirname "$demo")/target/kai-demo}
shopt -s nullglob

for current in "$work"/.kai/hosts/*/home/hello/current; do
    host=${current#"$work/.kai/hosts/"}
    host=${host%%/*}
    if [[ -x "$current/bin/stop.sh" ]]; then
        printf '%s: ' "$host"
        (cd "$current" && bin/stop.sh)
    fi
done
for pid_file in "$work"/.kai/hosts/*/home/hello/releases/*/run/pid; do
    release=$(dirname "$(dirname "$pid_file")")
    if [[ -x "$release/bin/stop.sh" ]]; then
        printf '%s: ' "${release#"$work/"}"
        (cd "$release" && bin/stop.sh)
    fi
done
