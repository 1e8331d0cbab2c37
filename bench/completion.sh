#!/usr/bin/env bash
# Completion speed: a configuration of 120 apps × 5 environments × 36 hosts with 60
# versions of each app in kai's version cache, then the time of
#   kai deploy prod jms<TAB>            (application names)
#   kai deploy prod jmsadmin-10.<TAB>   (versions, from the cache)
#   kai deploy prod --only app0<TAB>    (hosts)
# through the real protocol (`COMPLETE=bash kai -- kai deploy ...`), next to
# `kai --version` (the process-start floor). Target: median ≤ 10 ms per completion.
#
# Usage: bench/completion.sh [RUNS]        (default 300; KAI=/path/to/kai to skip the build)
# Uses hyperfine when installed (apt-get install -y hyperfine), else a timing loop.
set -euo pipefail

runs=${1:-300}
root=$(cd "$(dirname "$0")/.." && pwd)
if [[ -z ${KAI:-} ]]; then
    cargo build --release --quiet -p kai --manifest-path "$root/Cargo.toml"
    KAI=$root/target/release/kai
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
config=$work/config
repo=$work/repo
group=org.example.services
export HOME=$work/home XDG_CACHE_HOME=$work/cache
unset KAI_CONFIG COMPLETE
mkdir -p "$config/environments" "$config/apps" "$HOME"

cat >"$config/kai.toml" <<EOF
[repository]
url = "file://$repo"
group = "$group"
EOF

envs=(dev test stage preprod prod)
for env in "${envs[@]}"; do
    {
        echo "transport = \"ssh\""
        echo "[hosts]"
        for h in $(seq -w 1 36); do echo "app$h = \"app$h.$env.example.org\""; done
        echo "[balancer]"
        echo "kind = \"none\""
    } >"$config/environments/$env.toml"
done

apps=(jmsadmin jmsbroker jmsconsole ssod-grensesnitt telenormobil)
for i in $(seq -w 1 115); do apps+=("service$i"); done
for app in "${apps[@]}"; do
    {
        echo "packaging = \"zip\""
        echo "user = \"${app//-/}\""
        echo "start = \"bin/start.sh\""
        echo "stop = \"bin/stop.sh\""
        echo "[health]"
        echo "http = \"http://{address}:8080/ready\""
        for env in "${envs[@]}"; do
            echo "[env.$env]"
            echo "servers = [\"app01\", \"app02\", \"app03\"]"
            echo "standby = [\"app04\"]"
        done
    } >"$config/apps/$app.toml"
    # 60 versions: 9.0.0..9.9.0 and 10.0.0..10.49.0, as version folders of a folder repository.
    dir=$repo/${group//.//}/$app
    mkdir -p "$dir"
    (cd "$dir" && mkdir -p 9.{0..9}.0 10.{0..49}.0)
done

cd "$config"
"$KAI" check
# Fill the version cache the way kai does whenever it reads a version list.
for app in "${apps[@]}"; do "$KAI" versions "$app" >/dev/null; done
cached=$(find "$XDG_CACHE_HOME/kai/versions" -type f | wc -l)
echo "$cached version lists in the cache, $(($(wc -l <"$(find "$XDG_CACHE_HOME/kai/versions" -type f | head -1)") - 1)) versions each"

# `kai deploy prod jms<TAB>` as bash asks: the words after `--`, the index of the last one.
export _CLAP_COMPLETE_INDEX=3 _CLAP_IFS=$'\n' _CLAP_COMPLETE_COMP_TYPE=9
show() { COMPLETE=bash "$KAI" -- kai deploy prod "$@" | awk 'END { print NR }'; }
echo "jms<TAB>: $(show jms) candidates; jmsadmin-10.<TAB>: $(show jmsadmin-10.) candidates; --only app0<TAB>: $(
    _CLAP_COMPLETE_INDEX=4 show --only app0
) candidates"

cases=("jms" "jmsadmin-10." "--only app0")
labels=("kai deploy prod jms<TAB>" "kai deploy prod jmsadmin-10.<TAB>" "kai deploy prod --only app0<TAB>")

if command -v hyperfine >/dev/null; then
    json=$work/hyperfine.json
    summarize() {
        python3 -c 'import json,sys
for r in json.load(open(sys.argv[1]))["results"]:
    ms = {k: r[k] * 1000 for k in ("median", "mean", "min")}
    print("%-38s median %6.2f ms   mean %6.2f ms   min %6.2f ms   (%d runs)" % (sys.argv[2], ms["median"], ms["mean"], ms["min"], len(r["times"])))' "$json" "$1"
    }
    hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" --style none "$KAI --version" >/dev/null
    summarize "kai --version"
    for i in "${!cases[@]}"; do
        words=${cases[$i]}
        index=$((2 + $(wc -w <<<"$words")))
        COMPLETE=bash _CLAP_COMPLETE_INDEX=$index hyperfine -N --warmup 20 --runs "$runs" --export-json "$json" --style none \
            "$KAI -- kai deploy prod $words" >/dev/null
        summarize "${labels[$i]}"
    done
else
    # Median of `runs` wall-clock times, in ms.
    measure() {
        local times=() start end
        for _ in $(seq "$runs"); do
            start=$(date +%s%N)
            "$@" >/dev/null
            end=$(date +%s%N)
            times+=($((end - start)))
        done
        printf '%s\n' "${times[@]}" | sort -n | awk '{a[NR]=$1} END {printf "median %6.2f ms   min %6.2f ms   (%d runs)\n", a[int((NR+1)/2)]/1e6, a[1]/1e6, NR}'
    }
    printf '%-38s %s\n' "kai --version" "$(measure "$KAI" --version)"
    for i in "${!cases[@]}"; do
        words=${cases[$i]}
        index=$((2 + $(wc -w <<<"$words")))
        # shellcheck disable=SC2086
        printf '%-38s %s\n' "${labels[$i]}" "$(COMPLETE=bash _CLAP_COMPLETE_INDEX=$index measure "$KAI" -- kai deploy prod $words)"
    done
fi
