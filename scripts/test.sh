#!/usr/bin/env bash
# kai's tests, every one of them:
#
#   scripts/test.sh [cargo test arguments]
#
# The tests start their own servers (sshd, HAProxy, an SMTP server, HTTP repositories)
# on loopback addresses and stop them. This finds the programs they need and, where one
# is missing and this runs as root with apt-get, installs it without starting any system
# service. No test is skipped: a program still missing makes the tests that need it fail,
# each saying what to install.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
need() { # PROGRAM PACKAGE
    command -v "$1" >/dev/null 2>&1 || missing+=("$2")
}
need /usr/sbin/sshd openssh-server
need ssh openssh-client
need /usr/sbin/haproxy haproxy
need /usr/sbin/apache2 apache2
need /usr/bin/chromium chromium
need git git
need curl curl
need socat socat
need tar tar
need unzip unzip
need zip zip
need sudo sudo
need script bsdutils
need timeout coreutils
need python3 python3
need zsh zsh
need fish fish
need age age
python3 -c 'import pip' 2>/dev/null || missing+=(python3-pip)

if ((${#missing[@]})); then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        echo "installing ${missing[*]} (apt-get)" >&2
        export DEBIAN_FRONTEND=noninteractive
        # No system service may start (no sshd on 0.0.0.0:22): the tests start their own.
        policy=/usr/sbin/policy-rc.d created=
        if [ ! -e "$policy" ]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod +x "$policy"; created=1; fi
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        if [ -n "$created" ]; then rm -f "$policy"; fi
    else
        echo "missing: ${missing[*]}; the tests that need them will fail." >&2
        echo "  install them (apt-get install -y ${missing[*]}), or run this script as root" >&2
    fi
fi
if ! python3 -c 'import aiosmtpd' 2>/dev/null; then
    echo "installing aiosmtpd (pip), the SMTP server the notification tests send to" >&2
    python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd ||
        echo "  could not install aiosmtpd: the notification tests will fail (pip install aiosmtpd)" >&2
fi

exec cargo test --workspace "$@"
