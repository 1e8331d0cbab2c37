#!/usr/bin/env bash
# Stops this release of the demo service: TERM, up to 10 s, then KILL. Exit 0 when nothing runs.
# kai runs it in <home>/current.
set -euo pipefail
cd -P .    # the physical release folder, <home>/releases/<version>

alive() { # pid: running (not a zombie)?
    kill -0 "$1" 2>/dev/null && [[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

if [[ ! -s run/pid ]]; then
    echo "not running"
    exit 0
fi
pid=$(<run/pid)
# A pid file from before a reboot may name another process by now: only stop ours.
command=$(tr "\0" " " <"/proc/$pid/cmdline" 2>/dev/null || true)
if ! [[ "$pid" =~ ^[0-9]+$ ]] || ! alive "$pid" || [[ "$command" != *kai-demo-service* ]]; then
    echo "not running (stale pid file removed)"
    rm -f run/pid
    exit 0
fi

kill -TERM "$pid" 2>/dev/null || true
for _ in $(seq 100); do
    alive "$pid" || break
    sleep 0.1
done
if alive "$pid"; then
    echo "still running after 10 s: KILL"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do alive "$pid" || break; sleep 0.1; done
fi
rm -f run/pid
echo "stopped: pid $pid"
