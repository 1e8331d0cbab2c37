#!/usr/bin/env bash
# Starts this release of the demo service in the background and returns at once.
# kai runs it in <home>/current; the service then finds <home>/disabled two levels up.
set -euo pipefail
cd -P .    # the physical release folder, <home>/releases/<version>

alive() { # pid: running (not a zombie)?
    kill -0 "$1" 2>/dev/null && [[ "$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null)" != Z ]]
}

mkdir -p log run
if [[ -s run/pid ]] && alive "$(<run/pid)"; then
    echo "already running: pid $(<run/pid)"
    exit 0
fi

# Fully detached: own session, no terminal, no inherited stdin/stdout/stderr.
if command -v setsid >/dev/null; then
    setsid bin/kai-demo-service config/app.properties </dev/null >>log/service.log 2>&1 &
else
    nohup bin/kai-demo-service config/app.properties </dev/null >>log/service.log 2>&1 &
fi
pid=$!
echo "$pid" >run/pid

# Bad properties or a busy port make the service exit at once: say so here rather than
# letting the readiness check wait for its whole timeout.
sleep 0.2
if ! alive "$pid"; then
    echo "kai-demo-service exited at once; log/service.log says:" >&2
    tail -n 5 log/service.log >&2
    rm -f run/pid
    exit 1
fi
echo "started: pid $pid"
