#!/usr/bin/env bash
# kai status on an estate of 120 apps (svc001-svc120) x 5 environments (test, systest,
# qa, stage, prod), in one of two shapes (ESTATE_SHAPE):
#   seed   (default) the seed's estate: 36 SSH hosts (h01-h36), each environment hosts
#          of its own, each app on 2-4 hosts of each environment (1800 app-host pairs)
#   small  3 SSH hosts (h01-h03) shared by the 5 environments, every app on all 3 in
#          every environment: 360 app-host pairs an environment (1800 in all), each host
#          carrying the 120 apps of each environment. An environment's hosts have a root
#          of their own (<scratch>/hosts/<env>/hNN), so the app homes do not collide;
#          the same host name is the same address in every environment
# Most app-host pairs of prod and test hold a realistic state written by hand (2-3
# releases, `current`, checksums, history), two apps of qa are deployed by kai for real
# (on each of their qa hosts). Prints (and writes to <scratch>/estate-results.md) the wall time of
# `kai status` (all environments warm and cold, prod, prod svc001), the first refresh
# of `kai serve`, the scripts sent per host, and the CPU of kai, of its ssh masters and
# of the hosts (the sshd daemons and everything they ran) for one `kai status`.
#
#   usage: bench/estate.sh [RUNS]          (RUNS: measured runs of each figure, default 5)
#
# Runs as root on a Debian machine (it starts sshd daemons of its own and the hosts log
# in as root; openssh-server and curl are installed with apt-get when missing). The
# hosts are loopback addresses 127.0.10.1-36 (small: 1-3) on port 22422, served by 4
# sshd daemons (small: 1; at most 16 listen sockets a daemon) with their own host key,
# configuration and pid files under the scratch folder; they are stopped at exit. The
# system's sshd and port 22 are never touched. The two shapes use the same addresses
# and port: run one at a time. Every host is a folder (`root`) of this machine:
# <scratch>/hosts/hNN/srv/<app> (small: <scratch>/hosts/<env>/hNN/srv/<app>) is the
# app's home on hNN.
#
# Settings (environment):
#   ESTATE_SHAPE    seed (default) or small, above
#   KAI_BIN         the kai to measure; when set, nothing is built (default: this
#                   checkout's target/release/kai, built with `cargo build --release
#                   --bin kai` when missing or older than the sources)
#   ESTATE_SCRATCH  the scratch folder (default target/estate-bench in this checkout,
#                   target/estate-small for the small shape: no longer, see below); the keys, the Maven
#                   folder and qa's two deployed apps are kept between runs; configs and
#                   the prod/test hosts' state are rewritten. Its path is at most 34
#                   characters: kai's SSH sockets live under it (<scratch>/home/.cache/kai/
#                   ssh/shared/.ssh-connectionXXXXXX/master.XXXXXXXXXXXXXXXX while made)
#                   and a Unix socket's path has at most 107
#   ESTATE_FIGURE_BUDGET  seconds (default 180; 0: no limit): a figure whose first run
#                   times RUNS exceeds it is measured once (the report says so)
#   ESTATE_PORT     the hosts' SSH port (default 22422)
#   ESTATE_NET      the first three octets of the hosts' addresses (default 127.0.10)
#   ESTATE_SERVE_PORT  where `kai serve` listens (default: the first free port from 22480)
#   ESTATE_KEX      the daemons' KexAlgorithms (default curve25519-sha256, as the peers
#                   benchmark in ../shared/bench uses; "default": OpenSSH's own, whose
#                   sntrup761 costs the client ~0.1 s of CPU a login here)
set -euo pipefail
caller=$PWD
cd "$(dirname "$0")/.."
repo=$PWD
abs() { case $1 in /*) printf '%s\n' "$1" ;; *) printf '%s\n' "$caller/$1" ;; esac; }

runs=${1:-5}
[[ $runs =~ ^[1-9][0-9]*$ ]] || { echo "usage: bench/estate.sh [RUNS]" >&2; exit 2; }
shape=${ESTATE_SHAPE:-seed}
[[ $shape == seed || $shape == small ]] || { echo "estate.sh: ESTATE_SHAPE is seed or small, not \"$shape\"" >&2; exit 2; }
budget=${ESTATE_FIGURE_BUDGET:-180}
[[ $budget =~ ^[0-9]+$ ]] || { echo "estate.sh: ESTATE_FIGURE_BUDGET is a number of seconds" >&2; exit 2; }
port=${ESTATE_PORT:-22422}
net=${ESTATE_NET:-127.0.10}
kex=${ESTATE_KEX:-curve25519-sha256,curve25519-sha256@libssh.org}
if [[ -n ${ESTATE_SCRATCH:-} ]]; then scratch=$(abs "$ESTATE_SCRATCH")
elif [[ $shape == seed ]]; then scratch=$repo/target/estate-bench
else scratch=$repo/target/estate-$shape; fi
export TZ=UTC LC_ALL=C
# kai's own surroundings: its cache (and kept SSH connections) under the scratch folder.
unset XDG_CACHE_HOME KAI_CONFIG KAI_TRACE

die() { echo "estate.sh: $*" >&2; exit 1; }
((EUID == 0)) || die "run me as root: the hosts are sshd daemons of this script, logged in as root"
# ssh makes kai's master socket as <home>/.cache/kai/ssh/shared/.ssh-connectionXXXXXX/
# master.XXXXXXXXXXXXXXXX (68 characters after <home>); a Unix socket's path has at most 107.
((${#scratch} + 5 + 68 <= 107)) || die "the scratch folder $scratch is too long (${#scratch} characters, at most 34): kai's ssh sockets under it would pass the 107 characters of a Unix socket's path; set ESTATE_SCRATCH to a shorter folder"

# --- kai ----------------------------------------------------------------------------
if [[ -n ${KAI_BIN:-} ]]; then
  kai_bin=$(abs "$KAI_BIN")
else
  kai_bin=$repo/target/release/kai
  if [[ ! -x $kai_bin ]] || [[ -n $(find crates Cargo.toml Cargo.lock -newer "$kai_bin" -type f -print -quit) ]]; then
    echo "building kai (cargo build --release --bin kai) ..." >&2
    cargo build --release --quiet --bin kai
  fi
fi
[[ -x $kai_bin ]] || die "no kai at $kai_bin"
kai_version=$("$kai_bin" --version 2>&1) || die "$kai_bin --version failed: $kai_version"
echo "estate.sh: shape $shape, kai $kai_bin ($kai_version), scratch $scratch" >&2

# --- packages -----------------------------------------------------------------------
need=()
[[ -x /usr/sbin/sshd ]] || need+=(openssh-server)
command -v ssh >/dev/null && command -v ssh-keygen >/dev/null || need+=(openssh-client)
command -v curl >/dev/null || need+=(curl)
if ((${#need[@]})); then
  echo "installing ${need[*]} ..." >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi

# --- the estate -----------------------------------------------------------------------
envs=(test systest qa stage prod)
declare -A first size hroot   # per environment: its first host, how many, its hosts' roots' folder
if [[ $shape == seed ]]; then
  # Each environment has hosts of its own (an app's home on a host belongs to one
  # environment): test h01-h06, systest h07-h12, qa h13-h18, stage h19-h24, prod h25-h36.
  first=([test]=1 [systest]=7 [qa]=13 [stage]=19 [prod]=25)
  size=([test]=6 [systest]=6 [qa]=6 [stage]=6 [prod]=12)
  for env in "${envs[@]}"; do hroot[$env]=$scratch/hosts; done
  nhosts=36 daemons=4
  shape_text="the seed's estate"
else
  # Every environment on h01-h03, each with roots of its own: <scratch>/hosts/<env>/hNN.
  for env in "${envs[@]}"; do first[$env]=1 size[$env]=3 hroot[$env]=$scratch/hosts/$env; done
  nhosts=3 daemons=1
  shape_text="the small estate (3 hosts shared by the 5 environments, every app on all 3)"
fi
napps=120
host() { printf 'h%02d' "$1"; }
app() { printf 'svc%03d' "$1"; }
# The hosts of app N in the environment of index E: 2-4 consecutive hosts of its pool
# (small: all 3).
place() { # N ENV E: sets the array hs to them
  local n=$1 env=$2 e=$3 count start i h
  if [[ $shape == small ]]; then
    count=${size[$env]} start=0
  else
    count=$((2 + (n + e) % 3)) start=$(((n * 7 + e) % size[$env]))
  fi
  hs=()
  for ((i = 0; i < count; i++)); do printf -v h 'h%02d' $((first[$env] + (start + i) % size[$env])); hs+=("$h"); done
}
# Host i (1-36; small: 1-3) is 127.0.10.i, served by daemon (i-1) % daemons: nine
# addresses a daemon (small: the three on one).
daemon_of() { echo $((($1 - 1) % daemons)); }
has_health() { (($1 % 3 == 0)); }   # a third of the apps: [health] command = "true"

mkdir -p "$scratch"
chmod 700 "$scratch"
ssh_dir=$scratch/ssh conf=$scratch/config home=$scratch/home log=$scratch/kai.log
results=$scratch/estate-results.md
kai_ssh=$home/.cache/kai/ssh   # kai's kept connections (ssh_persist): their sockets
mkdir -p "$ssh_dir" "$home" "$scratch/remote-home" "$scratch/traces"
: >"$log"

# --- sshd daemons, keys, ssh_config, known_hosts ------------------------------------------
[[ -f $ssh_dir/ssh_host_ed25519_key ]] || ssh-keygen -q -t ed25519 -N '' -C estate-hostkey -f "$ssh_dir/ssh_host_ed25519_key"
[[ -f $ssh_dir/client_ed25519 ]] || ssh-keygen -q -t ed25519 -N '' -C estate-client -f "$ssh_dir/client_ed25519"
install -m 600 "$ssh_dir/client_ed25519.pub" "$ssh_dir/authorized_keys"
hostkey=$(cut -d' ' -f1,2 "$ssh_dir/ssh_host_ed25519_key.pub")
# root's ~/.bashrc may run anything (on this kind of machine, `pyenv init`), and Debian's
# bash reads it for every ssh command: the hosts' sessions get a HOME with Debian's
# stock .bashrc, as a fresh root account has.
cp /usr/share/base-files/dot.bashrc "$scratch/remote-home/.bashrc" 2>/dev/null || : >"$scratch/remote-home/.bashrc"

sshd_config() { echo "$ssh_dir/sshd_config.$1"; }
sshd_pidfile() { echo "$ssh_dir/sshd.$1.pid"; }
sshd_pid() { # K: the pid of our daemon K, when it runs (its command line names our config)
  local pf pid
  pf=$(sshd_pidfile "$1")
  [[ -f $pf ]] || return 1
  pid=$(<"$pf")
  [[ -r /proc/$pid/cmdline ]] && tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "-f $(sshd_config "$1") " || return 1
  echo "$pid"
}
stop_sshd() {
  local k pid
  for ((k = 0; k < daemons; k++)); do
    pid=$(sshd_pid "$k") || continue
    kill "$pid" 2>/dev/null || continue
    for _ in {1..100}; do [[ -e /proc/$pid ]] || break; sleep 0.05; done
  done
}

for ((k = 0; k < daemons; k++)); do
  {
    echo "# written by bench/estate.sh: daemon $k of $daemons"
    for ((i = 1; i <= nhosts; i++)); do
      (($(daemon_of "$i") == k)) && echo "ListenAddress $net.$i:$port"
    done
    cat <<EOF
HostKey $ssh_dir/ssh_host_ed25519_key
PidFile $(sshd_pidfile "$k")
AuthorizedKeysFile $ssh_dir/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
AuthenticationMethods publickey
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
PrintLastLog no
X11Forwarding no
MaxSessions 64
MaxStartups 200
SetEnv HOME=$scratch/remote-home
LogLevel ERROR
EOF
    [[ $kex == default ]] || echo "KexAlgorithms $kex"
  } >"$(sshd_config "$k")"
done
{
  echo "# written by bench/estate.sh"
  for ((i = 1; i <= nhosts; i++)); do printf 'Host %s\n    HostName %s.%d\n' "$(host "$i")" "$net" "$i"; done
  cat <<EOF

Host *
    Port $port
    User root
    IdentityFile $ssh_dir/client_ed25519
    IdentitiesOnly yes
    UserKnownHostsFile $ssh_dir/known_hosts
    GlobalKnownHostsFile /dev/null
    StrictHostKeyChecking yes
    PasswordAuthentication no
    KbdInteractiveAuthentication no
    BatchMode yes
    LogLevel ERROR
EOF
} >"$ssh_dir/ssh_config"
for ((i = 1; i <= nhosts; i++)); do echo "[$net.$i]:$port $hostkey"; done >"$ssh_dir/known_hosts"

# --- the kai run's helpers -------------------------------------------------------------------
kai() { HOME=$home NO_COLOR=1 "$kai_bin" --config "$conf" "$@"; }
serve_pid=
master_pids() { # the ssh masters kai keeps (their command line names their socket under kai_ssh)
  local f pid
  for f in $(grep -lsaF -- "$kai_ssh/" /proc/[0-9]*/cmdline); do
    pid=${f#/proc/} pid=${pid%/cmdline}
    [[ $(cat "/proc/$pid/comm" 2>/dev/null) == ssh ]] && echo "$pid"
  done
  return 0
}
# Closes kai's kept connections, as bench/peers/kai.sh does before each measured run:
# each master told to exit through its socket (those that do not, by their pid), and
# kai's socket folder removed. Then the hosts' sessions of them are given time to end.
close_masters() {
  local pids s left
  pids=$(master_pids)
  # (the sockets: <kai_ssh>/shared/.ssh-connectionXXXXXX/master)
  for s in $(find "$kai_ssh" -name master -type s 2>/dev/null); do
    HOME=$home ssh -F /dev/null -S "$s" -O exit kai-master >/dev/null 2>&1 || true
  done
  for _ in {1..100}; do
    left=
    for p in $pids; do [[ -e /proc/$p ]] && left+=" $p"; done
    [[ -z $left ]] && break
    sleep 0.05
  done
  # shellcheck disable=SC2086
  [[ -z $left ]] || kill $left 2>/dev/null || true
  rm -rf "$kai_ssh"
  [[ -z $pids ]] || sleep 0.3
}
cleanup() {
  if [[ -n $serve_pid ]]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
  close_masters 2>/dev/null || true
  stop_sshd || true
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# Start the daemons (a daemon of ours left running is restarted: its config is new).
stop_sshd
mkdir -p /run/sshd   # Debian's sshd wants its privilege-separation folder
for ((k = 0; k < daemons; k++)); do
  /usr/sbin/sshd -t -f "$(sshd_config "$k")" || die "sshd_config.$k is refused (above)"
  /usr/sbin/sshd -f "$(sshd_config "$k")" -E "$ssh_dir/sshd.$k.log"
done
for ((k = 0; k < daemons; k++)); do
  for _ in {1..50}; do sshd_pid "$k" >/dev/null && break; sleep 0.1; done
  sshd_pid "$k" >/dev/null || die "sshd $k did not start: $ssh_dir/sshd.$k.log says: $(tail -3 "$ssh_dir/sshd.$k.log")"
done
# Every host answers (in parallel).
pids=()
for ((i = 1; i <= nhosts; i++)); do
  HOME=$home ssh -F "$ssh_dir/ssh_config" "$(host "$i")" true </dev/null &
  pids+=($!)
done
for ((i = 0; i < nhosts; i++)); do wait "${pids[i]}" || die "$(host $((i + 1))) ($net.$((i + 1)):$port) does not answer over ssh"; done

# --- the configuration repository --------------------------------------------------------
rm -rf "$conf/environments" "$conf/apps"
mkdir -p "$conf/environments" "$conf/apps"
cat >"$conf/kai.toml" <<EOF
# written by bench/estate.sh: $shape_text
[repository]
url = "repo"
group = "bench"
EOF
for env in "${envs[@]}"; do
  {
    echo "# written by bench/estate.sh"
    [[ $env == prod ]] && echo "protected = true"
    cat <<EOF
transport = "ssh"
ssh_config = "$ssh_dir/ssh_config"
known_hosts = "$ssh_dir/known_hosts"

[hosts]
EOF
    for ((i = first[$env]; i < first[$env] + size[$env]; i++)); do
      h=$(host "$i")
      echo "$h = { address = \"$h\", root = \"${hroot[$env]}/$h\" }"
    done
    printf '\n[balancer]\nkind = "none"\n'
  } >"$conf/environments/$env.toml"
done
declare -A placed   # "env n" -> its hosts
pairs=0
for ((n = 1; n <= napps; n++)); do
  printf -v a 'svc%03d' "$n"
  {
    echo "artifact = \"$a\""
    echo 'packaging = "tar.gz"'
    echo 'user = "root"'
    echo "home = \"/srv/$a\""
    echo 'start = "true"'
    echo 'stop = "true"'
    has_health "$n" && printf '\n[health]\ncommand = "true"\n'
    for e in "${!envs[@]}"; do
      env=${envs[e]}
      place "$n" "$env" "$e"
      placed["$env $n"]=${hs[*]}
      pairs=$((pairs + ${#hs[@]}))
      printf -v list '"%s", ' "${hs[@]}"
      printf '\n[env.%s]\nservers = [%s]\n' "$env" "${list%, }"
    done
  } >"$conf/apps/$a.toml"
done

# --- two apps deployed for real (qa) -------------------------------------------------------
# A tiny tar.gz of svc001 (no health check) and svc003 (health check), versions 1.0.1 and
# 1.0.2, in the Maven folder (made once: the same bytes on every run), deployed with kai
# unless the qa hosts run them already.
real=(1 3)
for n in "${real[@]}"; do
  a=$(app "$n") base=$conf/repo/bench/$(app "$n")
  [[ -f $base/maven-metadata.xml ]] && continue
  for v in 1.0.1 1.0.2; do
    tmp=$(mktemp -d "$scratch/artifact.XXXXXX")
    mkdir -p "$tmp/bin" "$base/$v"
    echo "$v" >"$tmp/VERSION"
    printf '#!/bin/sh\nexit 0\n' >"$tmp/bin/start.sh"
    chmod 755 "$tmp/bin/start.sh"
    tar -czf "$base/$v/$a-$v.tar.gz" -C "$tmp" .
    rm -rf "$tmp"
    sha256sum "$base/$v/$a-$v.tar.gz" | cut -d' ' -f1 >"$base/$v/$a-$v.tar.gz.sha256"
  done
  cat >"$base/maven-metadata.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<metadata>
  <groupId>bench</groupId>
  <artifactId>$a</artifactId>
  <versioning>
    <latest>1.0.2</latest>
    <release>1.0.2</release>
    <versions>
      <version>1.0.1</version>
      <version>1.0.2</version>
    </versions>
  </versioning>
</metadata>
EOF
done
if ! check_out=$(kai check 2>&1); then
  echo "$check_out" >&2
  die "kai check refused the generated configuration ($conf)"
fi
qa_home() { local hs=(${placed["qa $1"]}); echo "${hroot[qa]}/${hs[0]}/srv/$(app "$1")"; }
deploy_note=
for v in 1.0.1 1.0.2; do
  [[ $(readlink "$(qa_home 1)/current" 2>/dev/null) == releases/1.0.2 && $(readlink "$(qa_home 3)/current" 2>/dev/null) == releases/1.0.2 ]] && break
  t0=$EPOCHREALTIME
  kai deploy qa "$(app 1)@$v" "$(app 3)@$v" --yes >>"$log" 2>&1 ||
    die "kai deploy qa $(app 1)@$v $(app 3)@$v failed: $(tail -5 "$log")"
  deploy_note+=" $v in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f s", b - a }');"
done
[[ -n $deploy_note ]] && echo "deployed $(app 1) and $(app 3) to qa:${deploy_note%;}" >&2
# What those deploys recorded with each release (the settings fingerprint and how the
# release runs), for the releases written by hand below.
settings_of() { # N: lines 2-3 of a checksum record of a really deployed app like app N
  local ref=1 f
  has_health "$1" && ref=3
  f=$(qa_home "$ref")/.kai/checksums/1.0.2
  [[ -f $f ]] && tail -n +2 "$f"
  return 0
}

# --- a deployed state on prod and test, written by hand -----------------------------------
# Every app but every tenth (not deployed there yet), on each of its hosts: 2-3 releases
# 1.0.x (test one version ahead of prod), `current` on the newest, a checksum record per
# release, a history with a "started" and an "ok" record per deploy. Every 17th app has
# drifted: its last host was left on the version before.
for env in prod test; do
  for ((i = first[$env]; i < first[$env] + size[$env]; i++)); do rm -rf "${hroot[$env]}/$(host "$i")"; done
done
users=(ann bob cho dev)
dirs=() links=()
for env in prod test; do
  for ((n = 1; n <= napps; n++)); do
    ((n % 10 == 0)) && continue
    printf -v a 'svc%03d' "$n"
    read -ra hs <<<"${placed["$env $n"]}"
    top=$((3 + n % 5)) nrel=$((2 + n % 2))
    [[ $env == test ]] && top=$((top + 1))
    for ((j = 0; j < ${#hs[@]}; j++)); do
      h=${hs[j]} last=$top
      ((n % 17 == 0 && j == ${#hs[@]} - 1)) && last=$((top - 1))
      d=${hroot[$env]}/$h/srv/$a
      dirs+=("$d/.kai/checksums" "$d/downloads")
      for ((x = last - nrel + 1; x <= last; x++)); do dirs+=("$d/releases/1.0.$x/bin"); done
      links+=("$d" "releases/1.0.$last")
    done
  done
done
mkdir -p "${dirs[@]}"
for ((l = 0; l < ${#links[@]}; l += 2)); do ln -s "${links[l + 1]}" "${links[l]}/current"; done
for env in prod test; do
  for ((n = 1; n <= napps; n++)); do
    ((n % 10 == 0)) && continue
    printf -v a 'svc%03d' "$n"
    read -ra hs <<<"${placed["$env $n"]}"
    all=$(printf '"%s",' "${hs[@]}") all=${all%,}
    top=$((3 + n % 5)) nrel=$((2 + n % 2))
    [[ $env == test ]] && top=$((top + 1))
    extra=$(settings_of "$n")
    for ((j = 0; j < ${#hs[@]}; j++)); do
      h=${hs[j]} last=$top
      ((n % 17 == 0 && j == ${#hs[@]} - 1)) && last=$((top - 1))
      d=${hroot[$env]}/$h/srv/$a
      history=
      for ((x = last - nrel + 1; x <= last; x++)); do
        v=1.0.$x
        echo "$v" >"$d/releases/$v/VERSION"
        printf '#!/bin/sh\nexit 0\n' >"$d/releases/$v/bin/start.sh"
        printf -v sum '%016x%016x%016x%016x' $((n * 1000 + x)) $((n * 7919 + x)) $((x * 104729 + n)) $((n * x + 1))
        if [[ -n $extra ]]; then printf 'sha256:%s\n%s\n' "$sum" "$extra"; else printf 'sha256:%s\n' "$sum"; fi >"$d/.kai/checksums/$v"
        # deployed 9 days apart, from 2026-09-01 (test a day before prod)
        epoch=$((1788220800 + (x * 9 + n % 7) * 86400 + n * 600))
        [[ $env == test ]] && epoch=$((epoch - 86400))
        printf -v t '%(%Y-%m-%dT%H:%M:%SZ)T' "$epoch"
        u=${users[(n + x) % 4]}
        if ((x == last - nrel + 1)); then from=null; else from="\"1.0.$((x - 1))\""; fi
        run="$epoch-$((1000 + (n * 31 + x) % 30000))"
        rec="{\"time\":\"$t\",\"user\":\"$u\",\"machine\":\"ws-$u\",\"env\":\"$env\",\"app\":\"$a\",\"action\":\"deploy\",\"from\":$from,\"to\":\"$v\""
        history+="$rec,\"result\":\"started\",\"duration_ms\":0,\"host\":\"$h\",\"hosts\":[$all],\"run\":\"$run\"}"$'\n'
        history+="$rec,\"result\":\"ok\",\"duration_ms\":$((4000 + (n * 37 + x * 11) % 9000)),\"host\":\"$h\",\"hosts\":[$all],\"run\":\"$run\"}"$'\n'
      done
      printf '%s' "$history" >"$d/.kai/history.jsonl"
    done
  done
done

# The other environments' homes that are empty folders, as an older kai's `status` left
# them (it made the home of every app it read), are removed: every run starts from the
# same hosts whichever kai ran before (prod's and test's hosts are rewritten above).
for env in "${envs[@]}"; do
  [[ $env == prod || $env == test ]] && continue
  for ((i = first[$env]; i < first[$env] + size[$env]; i++)); do
    d=${hroot[$env]}/$(host "$i")/srv
    [[ ! -d $d ]] || find "$d" -mindepth 1 -maxdepth 1 -type d -empty -delete
  done
done

# --- measurements --------------------------------------------------------------------------
ticks=$(getconf CLK_TCK)
daemon_pids() { local k; for ((k = 0; k < daemons; k++)); do sshd_pid "$k"; done | tr '\n' ' '; }
# "FLEET MASTERS" in seconds of CPU (user + system): FLEET, everything our sshd daemons
# ever forked (live processes' own time, the finished ones' through their parent's
# cutime/cstime, the daemons' finished children through theirs); MASTERS, the live ssh
# masters of kai. Exact across processes ending between two readings once they are reaped.
cpu_now() {
  cat /proc/[0-9]*/stat 2>/dev/null | awk -v roots="$(daemon_pids)" -v masters="$(master_pids | tr '\n' ' ')" -v hz="$ticks" '
    BEGIN { n = split(roots, r, " "); for (i = 1; i <= n; i++) root[r[i]] = 1
            n = split(masters, m, " "); for (i = 1; i <= n; i++) master[m[i]] = 1 }
    { pid = $1; line = $0; sub(/^.*\) /, "", line); split(line, f, " ")
      parent[pid] = f[2]; own[pid] = f[12] + f[13]; reaped[pid] = f[14] + f[15] }
    END {
      fleet = 0; ssh = 0
      for (p in root) if (p in parent) fleet += reaped[p]
      for (p in parent) {
        if (p in master) ssh += own[p] + reaped[p]
        if (p in root) continue
        q = parent[p]; hops = 0
        while (q > 1 && !(q in root) && (q in parent) && hops++ < 64) q = parent[q]
        if (q in root) fleet += own[p] + reaped[p]
      }
      printf "%.2f %.2f\n", fleet / hz, ssh / hz
    }'
}
secs() { awk '{ for (i = 1; i <= NF; i++) { split($i, p, "m"); sub(/s$/, "", p[2]); t += p[1] * 60 + p[2] } } END { printf "%.2f\n", t }'; }
# One measured kai run: `cold` closes the kept connections first (outside the time).
# Appends "WALL KAI_CPU MASTERS_CPU FLEET_CPU" (seconds) to the file SAMPLES.
measure() { # SAMPLES cold|warm KAI-ARGS...
  local samples=$1 mode=$2 f0 m0 f1 m1 t0 t1 out rc
  shift 2
  [[ $mode == cold ]] && close_masters
  read -r f0 m0 < <(cpu_now)
  t0=$EPOCHREALTIME
  # `times` in the subshell: its children's CPU is kai's (and what kai waited for)
  out=$( { rc=0; kai "$@" >/dev/null 2>>"$log" || rc=$?; echo "$rc"; times; } )
  t1=$EPOCHREALTIME
  mapfile -t out <<<"$out"
  rc=${out[0]}
  ((rc <= 1)) || die "kai $* exited $rc: $(tail -5 "$log")"
  sleep 0.3   # the hosts' sessions end and are reaped
  read -r f1 m1 < <(cpu_now)
  echo "$t0 $t1 $(secs <<<"${out[2]}") $m0 $m1 $f0 $f1" |
    awk '{ printf "%.3f %.2f %.2f %.2f\n", $2 - $1, $3, $5 - $4, $7 - $6 }' >>"$samples"
}
# "median min max" of column C of a samples file
stat_col() { awk -v c="$2" '{ print $c }' "$1" | sort -g | awk '{ v[NR] = $1 } END { m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; print m, v[1], v[NR] }'; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)   # this machine's load before the measurements
# Warm-up, and what the estate looks like to kai: every pair read, none unreachable.
kai status --json >"$scratch/status.json" 2>>"$log" || (($? == 1)) || die "kai status --json failed: $(tail -5 "$log")"
count() { grep -o -- "$1" "$2" | wc -l || true; }   # PATTERN FILE: its matches (0 too)
entries=$(count '"standby": *[a-z]*' "$scratch/status.json")
unreadable=$(count '"error": *"' "$scratch/status.json")
((entries == pairs)) || die "kai status --json shows $entries app-host pairs, the estate has $pairs ($scratch/status.json)"
((unreadable == 0)) || die "kai status could not read $unreadable app-host pairs: $(grep -o '"error": *"[^"]*"' "$scratch/status.json" | sort | uniq -c | head -3)"
deployed=$(count '"current": *"' "$scratch/status.json")
problems=$( (grep -o '"problem": *"[a-z-]*"' "$scratch/status.json" || true) | sed 's/.*"\([a-z-]*\)"$/\1/' | sort | uniq -c | awk '{ printf "%s%s %s", sep, $1, $2; sep = ", " }')

s=$scratch/samples
rm -rf "$s"
mkdir -p "$s"
# RUNS measured runs of a figure, or only the first when RUNS of it would last longer
# than ESTATE_FIGURE_BUDGET seconds.
figure() { # SAMPLES cold|warm KAI-ARGS...
  local r w
  measure "$@"
  w=$(tail -1 "$1" | cut -d' ' -f1)
  echo "estate.sh: ${1##*/} run 1: $w s" >&2
  if ((budget > 0 && runs > 1)) && awk -v w="$w" -v n="$runs" -v b="$budget" 'BEGIN { exit !(w * n > b) }'; then
    echo "estate.sh: ${1##*/}: measured once ($runs runs of $w s would pass ESTATE_FIGURE_BUDGET=$budget s)" >&2
    return 0
  fi
  for ((r = 1; r < runs; r++)); do measure "$@"; done
}
figure "$s/all-warm" warm status
figure "$s/all-cold" cold status
kai status prod >/dev/null 2>>"$log" || true
figure "$s/prod" warm status prod
figure "$s/prod-app" warm status prod "$(app 1)"

# Scripts sent per host by one `kai status` (warm): the `=== <host> sends: ` lines of
# KAI_TRACE. The trace names the host only: where several environments share a host
# name (small), an entry is counted for the environment whose root (<root>/) its text
# names.
roots=$scratch/traces/roots   # env TAB host TAB root, for every host of every environment
for env in "${envs[@]}"; do
  for ((i = first[$env]; i < first[$env] + size[$env]; i++)); do
    printf '%s\t%s\t%s\n' "$env" "$(host "$i")" "${hroot[$env]}/$(host "$i")"
  done
done >"$roots"
sends_summary() { # TRACE: "max (env host), average a host of an environment, total; by environment ..."
  local shared=0
  [[ $shape == small ]] && shared=1
  awk -F'\t' -v envs="${envs[*]}" -v nhosts="$nhosts" -v shared="$shared" '
    function close_entry() { if (h != "") c[e "\t" h]++; h = "" }
    FNR == NR { k = ++n[$2]; renv[$2, k] = $1; rroot[$2, k] = $3 "/"; pair[$1 "\t" $2] = 1; next }
    /^=== [^ ]+ sends: / {
      close_entry(); split($0, w, " "); h = w[2]
      e = (n[h] == 1) ? renv[h, 1] : "?"
    }
    h != "" && e == "?" { for (k = 1; k <= n[h]; k++) if (index($0, rroot[h, k])) { e = renv[h, k]; break } }
    END {
      close_entry()
      max = -1
      for (p in pair) {
        v = c[p] + 0; split(p, q, "\t")
        tot += v; np++; es[q[1]] += v; en[q[1]]++; hs[q[2]] += v
        if (v > max || (v == max && p < maxk)) { max = v; maxk = p; maxp = q[1] " " q[2] }
      }
      unk = 0
      for (p in c) if (!(p in pair)) { unk += c[p]; tot += c[p]; split(p, q, "\t"); hs[q[2]] += c[p] }
      line = sprintf("max %d (%s), average %.1f a host of an environment (%d of them), %d in all; by environment:", max, maxp, tot / np, np, tot)
      ne = split(envs, E, " ")
      for (i = 1; i <= ne; i++) line = line sprintf(" %s %.1f", E[i], es[E[i]] / en[E[i]])
      if (shared) {
        line = line "; by SSH host (all environments):"
        for (i = 1; i <= nhosts; i++) { hh = sprintf("h%02d", i); line = line sprintf(" %s %d", hh, hs[hh]) }
      }
      if (unk) line = line sprintf("; %d of them not attributed to an environment", unk)
      print line
    }' "$roots" "$1"
}
trace=$scratch/traces/status.trace
: >"$trace"
HOME=$home KAI_TRACE=$trace NO_COLOR=1 "$kai_bin" --config "$conf" status >/dev/null 2>>"$log" || true
sends=$(sends_summary "$trace")
trace_bytes=$(wc -c <"$trace")

# One `kai serve` refresh, from its start (cold: no kept connection) until /api/status
# holds every host.
serve_port=${ESTATE_SERVE_PORT:-}
if [[ -z $serve_port ]]; then
  for ((p = 22480; p < 22580; p++)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then serve_port=$p; break; fi
  done
fi
[[ -n $serve_port ]] || die "no free port for kai serve from 22480"
close_masters
serve_trace=$scratch/traces/serve.trace
: >"$serve_trace"
t0=$EPOCHREALTIME
HOME=$home KAI_TRACE=$serve_trace NO_COLOR=1 "$kai_bin" --config "$conf" serve --listen "127.0.0.1:$serve_port" --refresh 600s >>"$log" 2>&1 &
serve_pid=$!
doc=
until [[ $doc == *'"hosts":['* ]] && (($(count '"standby":' - <<<"$doc") == pairs)); do
  kill -0 "$serve_pid" 2>/dev/null || die "kai serve ended: $(tail -5 "$log")"
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { exit !(b - a > 300) }' && die "kai serve showed no full status in 300 s"
  sleep 0.05
  doc=$(curl -s -m 5 "http://127.0.0.1:$serve_port/api/status" || true)
done
t1=$EPOCHREALTIME
serve_wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", b - a }')
kill "$serve_pid" 2>/dev/null || true
wait "$serve_pid" 2>/dev/null || true
serve_pid=
serve_sends=$(sends_summary "$serve_trace")

# --- report --------------------------------------------------------------------------------
fmt() { # SAMPLES: "median s (min-max)" of the wall time
  stat_col "$1" 1 | awk '{ printf "%.2f s (%.2f-%.2f)", $1, $2, $3 }'
}
cpu() { # SAMPLES: medians of kai's, the masters' and the hosts' CPU
  local k m f
  read -r k _ < <(stat_col "$1" 2)
  read -r m _ < <(stat_col "$1" 3)
  read -r f _ < <(stat_col "$1" 4)
  echo "kai $k s, ssh masters $m s, hosts (sshd + sessions) $f s"
}
# Where the measured kai comes from: this checkout (built here), or the git checkout
# holding KAI_BIN, if any (its HEAD: the binary may be older or newer than that).
checkout_of() { # DIR: "commit[ + uncommitted changes]" of the git checkout DIR is in
  local top commit
  top=$(git -C "$1" rev-parse --show-toplevel 2>/dev/null) || return 1
  commit=$(git -C "$top" rev-parse --short HEAD 2>/dev/null) || return 1
  git -C "$top" status --porcelain --untracked-files=no -- crates 2>/dev/null | grep -q . && commit+=" + uncommitted changes"
  echo "$top at $commit"
}
if [[ -n ${KAI_BIN:-} ]]; then
  origin=$(checkout_of "$(dirname "$kai_bin")") && origin="KAI_BIN, in the checkout $origin" || origin="KAI_BIN"
else
  origin="built from this checkout, $(checkout_of "$repo" || echo "$repo")"
fi
# "(1 run)" after a figure measured fewer times than RUNS (ESTATE_FIGURE_BUDGET)
nruns() { local n; n=$(wc -l <"$1"); ((n == runs)) || echo " ($n run$( ((n == 1)) || echo s))"; }
{
  echo "## kai status on $shape_text ($(date -u +%Y-%m-%dT%H:%MZ))"
  echo
  echo "Shape: **$shape** (ESTATE_SHAPE). kai: \`$kai_bin\` (\`$kai_version\`; $origin)."
  echo
  echo "$(nproc) cores, load $load_before before measuring. Estate: $napps apps x ${#envs[@]} environments"
  if [[ $shape == small ]]; then
    echo "on $nhosts SSH hosts shared by the environments (each its own roots; $daemons sshd, $net.1-$nhosts:$port), every app on every host,"
    echo "$pairs app-host pairs ($((pairs / ${#envs[@]})) an environment), $deployed with a \`current\`;"
  else
    echo "on $nhosts SSH hosts ($daemons sshd, $net.1-$nhosts:$port), $pairs app-host pairs, $deployed with a \`current\`;"
  fi
  echo "problems kai reports: ${problems:-none}. Medians of $runs runs (min-max) unless said; warm: kai's connections kept from the run before,"
  echo "cold: closed before each run. CPU: user + system, medians. The $nhosts hosts share this machine's /proc: what a host"
  echo "script scans there (kai_procs) sees the processes of every host's session at once."
  echo
  echo "| measurement | value |"
  echo "|---|---|"
  echo "| \`kai status\` (all environments), warm | $(fmt "$s/all-warm")$(nruns "$s/all-warm") |"
  echo "| \`kai status\`, cold | $(fmt "$s/all-cold")$(nruns "$s/all-cold") |"
  echo "| \`kai status prod\`, warm | $(fmt "$s/prod")$(nruns "$s/prod") |"
  echo "| \`kai status prod $(app 1)\`, warm | $(fmt "$s/prod-app")$(nruns "$s/prod-app") |"
  echo "| \`kai serve\`: start to a full /api/status (cold, polled every 50 ms) | $serve_wall s |"
  echo "| scripts sent per host, one \`kai status\` | $sends (trace $trace_bytes bytes) |"
  echo "| scripts sent per host, one \`kai serve\` refresh | $serve_sends |"
  echo "| CPU of one \`kai status\`, warm | $(cpu "$s/all-warm") |"
  echo "| CPU of one \`kai status\`, cold | $(cpu "$s/all-cold") |"
  echo "| CPU of one \`kai status prod\`, warm | $(cpu "$s/prod") |"
} | tee "$results"
echo
echo "written to $results (samples in $s: wall kai-cpu masters-cpu hosts-cpu; traces in $scratch/traces)"
