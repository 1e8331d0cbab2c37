#!/usr/bin/env bash
# kai's fuzz targets, each for SECONDS (default 10) on its corpus (fuzz/corpus/<target>,
# which grows with what the fuzzer finds new):
#
#   fuzz/run.sh [SECONDS] [TARGET...]
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz`). A finding
# stops the run (the crashing input is in fuzz/artifacts/<target>/).
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-10}
shift || true
targets=("$@")
if ((${#targets[@]} == 0)); then
    mapfile -t targets < <(cargo +nightly fuzz list)
fi
for target in "${targets[@]}"; do
    echo "== fuzz $target, ${seconds}s"
    set +e
    cargo +nightly fuzz run "$target" "corpus/$target" -- -max_total_time="$seconds" -max_len=65536 -print_final_stats=1 2>&1 |
        grep -E "^(Done|stat::number_of_executed_units|stat::new_units_added|==[0-9]+==|SUMMARY|thread|panicked|Test unit written)"
    status=${PIPESTATUS[0]}
    set -e
    if ((status != 0)); then
        echo "fuzz $target found a failure (status $status): the input is in fuzz/artifacts/$target/" >&2
        exit 1
    fi
done
