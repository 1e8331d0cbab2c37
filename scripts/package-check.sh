#!/usr/bin/env bash
# Installs kai's Debian package as a user would, checks what the user gets, removes it:
#
#   scripts/package-check.sh [PACKAGE.deb]     (default: scripts/package.sh builds it)
#
# The package's files, owners and modes; `dpkg -i`; `kai --version`; `man kai`, `man
# kai-deploy` and `man kai.toml` as man renders them; TAB in a new user's login bash
# (/etc/skel; bash-completion loads kai's script when `kai` is first completed), zsh and
# fish, each a fresh shell that sources nothing by hand; `dpkg -r` and nothing of kai
# left, and TAB no longer completing. The first failure stops it, saying what was
# expected and what was seen (exit 1).
#
# Needs root; installs man-db, bash-completion, tmux, zsh and fish with apt-get when they
# are missing. Refuses to run when kai is already installed (it would replace it).
set -euo pipefail
cd "$(dirname "$0")/.."

fail() {
    printf 'package-check: FAILED: %s\n' "$*" >&2
    exit 1
}
ok() { printf 'package-check: ok: %s\n' "$*"; }

[ "$(id -u)" = 0 ] || fail "run it as root: it installs and removes the package"
if dpkg-query -W -f='${Status}' kai 2>/dev/null | grep -q ' installed$'; then
    fail "kai is installed already; this check would replace it (dpkg -r kai first)"
fi
[ ! -e /usr/bin/kai ] || fail "/usr/bin/kai exists, and no kai package holds it"

missing=()
command -v man >/dev/null || missing+=(man-db)
[ -f /usr/share/bash-completion/bash_completion ] || missing+=(bash-completion)
for program in tmux zsh fish; do command -v "$program" >/dev/null || missing+=("$program"); done
if ((${#missing[@]})); then
    command -v apt-get >/dev/null || fail "missing: ${missing[*]}"
    echo "package-check: installing ${missing[*]} (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
        fail "could not install ${missing[*]}"
fi

deb=${1:-}
if [ -z "$deb" ]; then
    deb=$(scripts/package.sh | tail -1)
fi
[ -f "$deb" ] || fail "no package at $deb"

tmp=$(mktemp -d /tmp/kai-package-check.XXXXXX)
socket=$tmp/tmux # a tmux server of its own, its socket removed with $tmp
installed=
cleanup() {
    tmux -S "$socket" kill-server 2>/dev/null || true
    if [ -n "$installed" ]; then dpkg -r kai >/dev/null 2>&1 || echo "package-check: could not remove kai (dpkg -r kai)" >&2; fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- The package itself ---------------------------------------------------------------
listing=$(dpkg-deb -c "$deb")
files=$(awk '{ sub(/^\./, "", $6); print $6 }' <<<"$listing" | grep -v '/$')
expect_file() { # MODE PATH
    grep -qE "^$1 root/root .* \.$2\$" <<<"$listing" || fail "the package should hold $2 ($1 root/root); it has: $(grep -F " .$2" <<<"$listing" || echo nothing)"
}
expect_file -rwxr-xr-x /usr/bin/kai
for file in /usr/share/man/man5/kai.toml.5.gz /usr/share/bash-completion/completions/kai \
    /usr/share/zsh/vendor-completions/_kai /usr/share/fish/vendor_completions.d/kai.fish \
    /usr/share/doc/kai/README.md /usr/share/doc/kai/copyright /usr/share/doc/kai/examples/config/kai.toml; do
    expect_file -rw-r--r-- "$file"
done
strays=$(awk '$2 != "root/root" || ($1 ~ /^d/ && $1 != "drwxr-xr-x") || ($1 ~ /^-/ && $1 != "-rw-r--r--" && $6 != "./usr/bin/kai")' <<<"$listing")
[ -z "$strays" ] || fail "files not root/root with 0644 (0755 for folders and usr/bin/kai):"$'\n'"$strays"
# One page per command: what the packaged kai writes with `kai man --dir`.
dpkg-deb -x "$deb" "$tmp/unpacked"
"$tmp/unpacked/usr/bin/kai" man --dir "$tmp/pages"
pages=$(cd "$tmp/pages" && find . -type f | sed 's/^\.//; s/$/.gz/' | sort)
packaged=$(grep '^/usr/share/man/' <<<"$files" | sed 's|^/usr/share/man||' | sort)
[ "$pages" = "$packaged" ] || fail "the manual pages differ from what kai writes: $(diff <(echo "$pages") <(echo "$packaged") | grep '^[<>]' | tr '\n' ' ')"
for page in $packaged; do
    gzip -t "$tmp/unpacked/usr/share/man$page" || fail "$page is not gzip"
done
for field in Package Version Architecture Maintainer Depends Section Priority Description; do
    [ -n "$(dpkg-deb -f "$deb" "$field")" ] || fail "DEBIAN/control has no $field"
done
depends=$(dpkg-deb -f "$deb" Depends)
for package in openssh-client libc6; do
    grep -qw "$package" <<<"$depends" || fail "Depends ($depends) lacks $package"
done
[ "$(dpkg-deb -f "$deb" Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture is not $(dpkg --print-architecture)"
version=$(dpkg-deb -f "$deb" Version)
ok "$(basename "$deb"): $(wc -l <<<"$files") files, $(wc -l <<<"$packaged") manual pages, Depends: $depends"

# --- Installed ------------------------------------------------------------------------
# Docker images often keep manual pages and documentation out (path-exclude in
# /etc/dpkg/dpkg.cfg.d/): kai's own are let in, as a user who reads them would.
include=()
excludes=$(sed -n 's/^[[:space:]]*path-exclude[[:space:]=]*//p' /etc/dpkg/dpkg.cfg /etc/dpkg/dpkg.cfg.d/* 2>/dev/null || true)
while read -r glob; do
    [ -n "$glob" ] || continue
    for file in $files; do
        # shellcheck disable=SC2053 # a glob, as dpkg matches it
        if [[ $file == $glob ]]; then include+=("--path-include=$file"); fi
    done
done <<<"$excludes"
if ((${#include[@]})); then
    echo "package-check: dpkg is set to leave out ${#include[@]} of kai's files ($(tr '\n' ' ' <<<"$excludes")); installing them with --path-include"
fi
installed=1
dpkg "${include[@]}" -i "$deb" >"$tmp/dpkg.log" 2>&1 || fail "dpkg -i $deb: $(cat "$tmp/dpkg.log")"
path=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
[ "$(PATH=$path command -v kai)" = /usr/bin/kai ] || fail "kai on PATH is $(PATH=$path command -v kai), not /usr/bin/kai"
for file in $files; do
    [ -e "$file" ] || fail "$file was not installed"
done
shown=$(kai --version)
[[ $shown == "kai ${version//\~/-}"* ]] || fail "kai --version says '$shown', the package is $version"
ok "dpkg -i; $shown"

# --- Manual pages, as man finds and renders them --------------------------------------
man_page() { # WHAT... : man's text for it, checked to be a rendered page
    local text
    text=$(MANWIDTH=100 man -P cat "$@" 2>"$tmp/man.err") || fail "man $*: $(cat "$tmp/man.err")"
    grep -q '^\.\(TH\|SH\|TP\)' <<<"$text" && fail "man $* shows roff, not a page: $(head -5 <<<"$text")"
    printf '%s\n' "$text"
}
expect_in() { # TEXT WHAT LINE...
    local text=$1 what=$2
    shift 2
    for line in "$@"; do
        grep -qF -- "$line" <<<"$text" || fail "$what should show '$line'; it shows:"$'\n'"$(head -30 <<<"$text")"
    done
}
[ "$(man -w kai)" = /usr/share/man/man1/kai.1.gz ] || fail "man -w kai: $(man -w kai 2>&1)"
expect_in "$(man_page kai)" "man kai" "kai(1)" NAME "Deploy versioned artifacts" SYNOPSIS "kai-deploy(1)"
expect_in "$(man_page kai-deploy)" "man kai-deploy" "kai-deploy(1)" "--dry-run"
expect_in "$(man_page kai.toml)" "man kai.toml" "KAI.TOML(5)" "repository.url" "keep_releases"
expect_in "$(man_page 5 kai.toml)" "man 5 kai.toml" "KAI.TOML(5)"
ok "man kai, man kai-deploy, man kai.toml render"

# --- TAB, in fresh shells -------------------------------------------------------------
# A new user's home: /etc/skel (Debian's .bashrc loads bash-completion) and, for zsh, the
# startup file zsh's new-user menu recommends (compinit).
home=$tmp/home
cp -rT /etc/skel "$home"
if [ -f /etc/zsh/newuser.zshrc.recommended ]; then
    cp /etc/zsh/newuser.zshrc.recommended "$home/.zshrc"
else
    echo 'autoload -Uz compinit && compinit' >"$home/.zshrc"
fi
kai init "$tmp/config" >/dev/null # environment test, app hello

# Starts SHELL... in a new terminal in $tmp/config, types TYPED and TAB: what the terminal
# shows once it shows EXPECTED, or after 10 s.
tab() { # TYPED EXPECTED SHELL...
    local typed=$1 expected=$2 session=s$RANDOM
    shift 2
    tmux -S "$socket" -f /dev/null new-session -d -s "$session" -x 150 -y 40 -c "$tmp/config" \
        env -i HOME="$home" USER=root LOGNAME=root TERM=screen LANG=C.UTF-8 PATH="$path" "$@"
    tmux -S "$socket" send-keys -t "$session" -l 'echo RE""ADY'
    tmux -S "$socket" send-keys -t "$session" Enter
    for _ in $(seq 100); do
        tmux -S "$socket" capture-pane -p -t "$session" | grep -q '^READY' && break
        sleep 0.1
    done
    tmux -S "$socket" send-keys -t "$session" -l "$typed"
    sleep 0.3
    tmux -S "$socket" send-keys -t "$session" Tab
    for _ in $(seq 100); do
        tmux -S "$socket" capture-pane -p -J -t "$session" | grep -qF -- "$expected" && break
        sleep 0.1
    done
    tmux -S "$socket" capture-pane -p -J -t "$session"
    tmux -S "$socket" kill-session -t "$session"
}
expect_tab() { # TYPED COMPLETED SHELL...
    local typed=$1 completed=$2
    shift 2
    local shown
    shown=$(tab "$typed" "$completed" "$@")
    grep -q '^READY' <<<"$shown" || fail "$*: the shell did not start; the terminal shows:"$'\n'"$shown"
    grep -qF -- "$completed" <<<"$shown" || fail "$*: '$typed' then TAB should read '$completed'; the terminal shows:"$'\n'"$shown"
}
for shell in "bash -l -i" "zsh -i" "fish -i"; do
    # shellcheck disable=SC2086 # the shell and its flags
    {
        expect_tab "kai dep" "kai deploy" $shell
        expect_tab "kai deploy t" "kai deploy test" $shell
        expect_tab "kai deploy test hel" "kai deploy test hello" $shell
    }
    ok "TAB in a new ${shell%% *}: kai dep -> kai deploy, an environment, an application"
done

# --- Removed --------------------------------------------------------------------------
dpkg -r kai >"$tmp/dpkg.log" 2>&1 || fail "dpkg -r kai: $(cat "$tmp/dpkg.log")"
installed=
[ ! -e /usr/bin/kai ] || fail "/usr/bin/kai is still there after dpkg -r"
for file in $files; do
    [ ! -e "$file" ] || fail "$file is still there after dpkg -r"
done
if dpkg-query -W -f='${Status}' kai 2>/dev/null | grep -q ' installed$'; then fail "dpkg still lists kai as installed"; fi
shown=$(tab "kai dep" "kai deploy" bash -l -i)
if grep -qF "kai deploy" <<<"$shown"; then fail "TAB still completes kai after dpkg -r:"$'\n'"$shown"; fi
ok "dpkg -r: /usr/bin/kai, its pages and completions are gone, and TAB no longer completes kai"
