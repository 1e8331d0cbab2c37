#!/usr/bin/env bash
# kai's demo, one command: three local hosts (folders on this machine), a folder Maven
# repository with three versions of a small web service, and kai deploying it.
#
#   demo/run.sh [<work>]       (default: target/kai-demo in the workspace)
#
# Needs only bash, coreutils, tar and cargo. The services listen on 127.0.0.21-23, port 18080,
# and keep running afterwards: demo/stop.sh [<work>] stops them. Exit status 0 only when every
# step worked and every host answered as expected.
set -euo pipefail

demo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(dirname "$demo")
work=${1:-$workspace/target/kai-demo}
# The hosts of demo/config/environments/demo.toml, and the app's port and standby host.
hosts=(web1:127.0.0.21 web2:127.0.0.22 web3:127.0.0.23)
port=18080
standby=web3

if [[ -t 1 && -z "${NO_COLOR:-}" ]]; then bold=$'\e[1m' plain=$'\e[0m'; else bold='' plain=''; fi
heading() { printf '\n%s== %s%s\n' "$bold" "$*" "$plain"; }
# shown PATH: PATH relative to the working directory when inside it, for readable output.
shown() { printf '%s' "${1#"$PWD"/}"; }

# cargo_bin NAME: builds the binary NAME once (release) and prints its path.
cargo_bin() {
    cargo build --release --bin "$1" --manifest-path "$workspace/Cargo.toml" \
        --message-format=json-render-diagnostics |
        sed -n "s/.*\"executable\":\"\([^\"]*\/$1\)\".*/\1/p" | tail -n 1
}

# http_get ADDRESS PORT PATH: prints the body of a 200 answer, fails otherwise (no curl needed).
http_get() {
    local status line body=
    {
        printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$3" "$1" >&3
        IFS= read -r -t 5 status <&3 || return 1
        while IFS= read -r -t 5 line <&3 && [[ "$line" != $'\r' ]]; do :; done
        IFS= read -r -t 5 -d '' body <&3 || true
    } 2>/dev/null 3<>"/dev/tcp/$1/$2" || return 1
    [[ "$status" == "HTTP/1.1 200 "* ]] || return 1
    printf '%s' "${body%$'\n'}"
}

# show_hosts VERSION: asks every host's service who it is, straight over TCP, and counts in
# $problems each host that is not as a deploy of VERSION leaves it.
problems=0
show_hosts() {
    local entry host address home current answer verdict ok
    for entry in "${hosts[@]}"; do
        host=${entry%%:*} address=${entry#*:} ok=
        home="$work/.kai/hosts/$host/home/hello"
        current=$(readlink "$home/current" 2>/dev/null || echo none)
        current=${current##*/}
        answer=$(http_get "$address" "$port" /) || answer=
        if [[ "$host" == "$standby" && -n "$answer" ]]; then
            verdict="standby, yet http://$address:$port/ answers: $answer"
        elif [[ "$host" == "$standby" && ! -e "$home/disabled" ]]; then
            verdict="standby: not running, but no disabled file"
        elif [[ "$host" == "$standby" ]]; then
            verdict="standby: has the release, disabled and not running" ok=yes
        elif [[ -n "$answer" ]]; then
            verdict="http://$address:$port/ -> $answer ($(http_get "$address" "$port" /greeting))"
            [[ "$answer" != "hello $1 "* ]] || ok=yes
        else
            verdict="http://$address:$port/ does not answer"
        fi
        [[ "$current" == "$1" ]] || ok=
        printf '%-5s current: %-7s %s\n' "$host" "$current" "$verdict"
        if [[ -z "$ok" ]]; then
            echo "      ^ expected hello $1 here" >&2
            problems=$((problems + 1))
        fi
    done
}

# kai_fails ARGS...: shows the command, runs it, and stops the demo unless it fails with 1.
kai_fails() {
    printf '%s$ kai %s%s\n' "$bold" "${*//"$work"/$(shown "$work")}" "$plain"
    local status=0
    "$kai_bin" "$@" || status=$?
    if ((status != 1)); then
        echo "kai exited with status $status where the deploy should have failed (1); the demo stops here" >&2
        exit 1
    fi
}

# kai ARGS...: shows the command, runs it, and stops the demo if it fails.
kai() {
    printf '%s$ kai %s%s\n' "$bold" "${*//"$work"/$(shown "$work")}" "$plain"
    local status=0
    "$kai_bin" "$@" || status=$?
    if ((status != 0)); then
        echo "kai exited with status $status; the demo stops here" >&2
        exit "$status"
    fi
}

heading "Preparing $(shown "$work")"
if [[ -e "$work" && -n "$(ls -A "$work")" && ! -e "$work/.kai-demo" ]]; then
    echo "$work exists and is not a kai demo folder; choose another: demo/run.sh <work>" >&2
    exit 2
fi
if [[ -e "$work" ]]; then
    "$demo/stop.sh" "$work"
    rm -rf "$work"
fi
mkdir -p "$work"
work=$(cd "$work" && pwd)
touch "$work/.kai-demo"
cp -R "$demo/config/." "$work/"
echo "configuration: $(shown "$work")/kai.toml, environments/demo.toml, apps/hello.toml"

heading "Publishing hello 1.0.0, 1.1.0 and 1.2.0 into the folder repository $(shown "$work")/repo"
"$demo/publish.sh" "$work/repo" 1.0.0 1.1.0 1.2.0

heading "Building kai"
kai_bin=$(cargo_bin kai)
if [[ ! -x "$kai_bin" ]]; then
    echo "cargo did not build kai" >&2
    exit 1
fi

heading "What would deploying hello 1.0.0 do? (the plan; --commands shows every command; nothing runs)"
kai --config "$work" plan demo hello-1.0.0

heading "Deploy hello 1.0.0: staged on all three hosts, started on web1 then web2"
kai --config "$work" deploy demo hello-1.0.0

heading "Each host, asked over TCP"
show_hosts 1.0.0

heading "Deploy the newest hello (1.2.0): web1 and web2 switched one after the other"
kai --config "$work" deploy demo hello

heading "Each host, asked over TCP"
show_hosts 1.2.0

heading "Deploy the newest hello again: it runs everywhere already, so nothing to do"
kai --config "$work" deploy demo hello

heading "Publishing hello 1.3.0, a broken release: it starts but never answers ready"
"$demo/publish.sh" --broken "$work/repo" 1.3.0

heading "Deploy hello 1.3.0: web1 fails its health check and is put back on 1.2.0; web2 is never switched"
kai_fails --config "$work" deploy demo hello-1.3.0

heading "Each host, asked over TCP: still 1.2.0 everywhere"
show_hosts 1.2.0

heading "What runs where, and who changed it"
kai --config "$work" status demo
kai --config "$work" history demo

heading "Done"
echo "Each host is a folder: ls $(shown "$work")/.kai/hosts/web1/home/hello"
echo "The services keep running; stop them with: $(shown "$demo")/stop.sh $(shown "$work")"
if ((problems > 0)); then
    echo "$problems host check(s) above did not show what the deploys should have done" >&2
    exit 1
fi
