#!/usr/bin/env bash
# kai on local hosts at scale (issue 15): N apps × H hosts, every host a folder on this
# machine, the artifacts in a folder repository. Times a fresh deploy of every app, an
# upgrade of every app, and `kai plan` of every app (its size too), and prints
# milliseconds per app-host pair.
#
#   bench/local-fleet.sh [APPS] [HOSTS]        (default 100 × 10)
#
# KAI_BIN: the kai to measure (default: this checkout's target/release/kai, built
# when missing). Work happens in a temporary folder, removed at the end.
set -euo pipefail
repo=$(cd "$(dirname "$0")/.." && pwd)
apps=${1:-100} hosts=${2:-10}
kai=${KAI_BIN:-$repo/target/release/kai}
if [[ ! -x $kai ]]; then
  (cd "$repo" && cargo build --release --quiet --bin kai)
fi
work=$(mktemp -d /tmp/kai-local-fleet.XXXXXX)
trap 'rm -rf "$work"' EXIT

python3 - "$work" "$apps" "$hosts" <<'PY'
import hashlib, io, os, sys, tarfile
root, apps, hosts = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.makedirs(f"{root}/environments"); os.makedirs(f"{root}/apps")
open(f"{root}/kai.toml", "w").write('[repository]\nurl = "repo"\ngroup = "bench"\n\n[defaults]\nkeep_releases = 3\n')
rows = "".join(f'h{i:02d} = "127.0.0.1"\n' for i in range(hosts))
open(f"{root}/environments/bench.toml", "w").write(
    'transport = "local"\nrollout = { batch = "100%" }\n\n[hosts]\n' + rows + '\n[balancer]\nkind = "none"\n')
def artifact(version):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as t:
        for name, data, mode in [("bin/start.sh", b"#!/bin/sh\nexit 0\n", 0o755), ("VERSION", version.encode() + b"\n", 0o644)]:
            info = tarfile.TarInfo(name); info.size = len(data); info.mode = mode
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()
servers = ", ".join(f'"h{i:02d}"' for i in range(hosts))
for a in range(apps):
    name = f"app{a:03d}"
    for version in ("1.0.0", "1.1.0"):
        d = f"{root}/repo/bench/{name}/{version}"; os.makedirs(d)
        blob = artifact(version)
        open(f"{d}/{name}-{version}.tar.gz", "wb").write(blob)
        open(f"{d}/{name}-{version}.tar.gz.sha256", "w").write(hashlib.sha256(blob).hexdigest())
    open(f"{root}/apps/{name}.toml", "w").write(
        f'packaging = "tar.gz"\nuser = "{name}"\nstart = "bin/start.sh"\nstop = "bin/start.sh"\n'
        f'properties_file = "app.properties"\n\n[properties]\n"app.name" = "{{app}}"\n"app.version" = "{{version}}"\n\n'
        f'[env.bench]\nservers = [{servers}]\n')
PY

names=$(for ((a = 0; a < apps; a++)); do printf 'app%03d ' "$a"; done)
pairs=$((apps * hosts))
timed() { # LABEL ARGS... : runs kai, prints its wall time per app-host pair
  local label=$1; shift
  local start end
  start=$(date +%s%N)
  "$kai" --config "$work" -q "$@" >/dev/null
  end=$(date +%s%N)
  awk -v l="$label" -v ns=$((end - start)) -v p=$pairs 'BEGIN { printf "%-28s %8.2f s  %7.2f ms per app-host pair\n", l, ns / 1e9, ns / 1e6 / p }'
}
echo "kai $("$kai" --version | cut -d' ' -f2): $apps apps x $hosts local hosts ($pairs pairs), $(nproc) cores"
# shellcheck disable=SC2086
timed "plan (fresh)" plan bench $names
size=$("$kai" --config "$work" plan bench $names --commands | wc -c)
echo "plan --commands output          $size bytes ($((size / apps)) a app)"
# shellcheck disable=SC2086
timed "deploy 1.0.0 (fresh)" deploy bench $(for n in $names; do printf '%s-1.0.0 ' "$n"; done)
# shellcheck disable=SC2086
timed "deploy 1.1.0 (upgrade)" deploy bench $(for n in $names; do printf '%s-1.1.0 ' "$n"; done)
# shellcheck disable=SC2086
timed "deploy 1.1.0 (up to date)" deploy bench $(for n in $names; do printf '%s-1.1.0 ' "$n"; done)
