#!/usr/bin/env bash
# Publishes the demo app into a folder Maven repository, one artifact per version:
#
#   demo/publish.sh [--broken] <repo-dir> <version>...
#
# --broken publishes releases that start but never become ready (a file BROKEN in the
# release makes the service's /ready answer 500): what a deploy must put back.
#
#   <repo>/org/example/demo/hello/<v>/hello-<v>.tar.gz          bin/start.sh bin/stop.sh bin/kai-demo-service
#   <repo>/org/example/demo/hello/<v>/hello-<v>.tar.gz.sha256   the hex digest, as Maven repositories keep it
#   <repo>/org/example/demo/hello/maven-metadata.xml            every version folder; <latest> and <release>
#                                                               are the last published, as a real upload does
set -euo pipefail

broken=
if [[ "${1:-}" == --broken ]]; then
    broken=1
    shift
fi
if (($# < 2)); then
    echo "usage: $0 [--broken] <repo-dir> <version>..." >&2
    exit 2
fi
repo=$1
shift
for version in "$@"; do
    if ! [[ "$version" =~ ^[0-9][A-Za-z0-9._+-]{0,127}$ ]]; then
        echo "$0: not a version: '$version' (starts with a digit; letters, digits . _ + -)" >&2
        exit 2
    fi
done

demo=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
workspace=$(dirname "$demo")
group_path=org/example/demo
artifact=hello

# cargo_bin NAME: builds the binary NAME once (release) and prints its path.
cargo_bin() {
    cargo build --release --bin "$1" --manifest-path "$workspace/Cargo.toml" \
        --message-format=json-render-diagnostics |
        sed -n "s/.*\"executable\":\"\([^\"]*\/$1\)\".*/\1/p" | tail -n 1
}
service=$(cargo_bin kai-demo-service)
if [[ ! -x "$service" ]]; then
    echo "$0: cargo did not build kai-demo-service" >&2
    exit 1
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/bin"
cp "$demo/app/bin/start.sh" "$demo/app/bin/stop.sh" "$service" "$stage/bin/"
chmod 755 "$stage/bin" "$stage/bin/"*
contents=(bin)
if [[ -n "$broken" ]]; then
    echo "this release never becomes ready (demo/publish.sh --broken)" >"$stage/BROKEN"
    contents+=(BROKEN)
fi

base="$repo/$group_path/$artifact"
for version in "$@"; do
    mkdir -p "$base/$version"
    file="$base/$version/$artifact-$version.tar.gz"
    tar -C "$stage" --sort=name --owner=0 --group=0 --numeric-owner \
        --mtime="@${SOURCE_DATE_EPOCH:-1704067200}" -cf - "${contents[@]}" | gzip -9n >"$file.tmp"
    mv "$file.tmp" "$file"
    sha256sum "$file" | cut -d' ' -f1 | tr -d '\n' >"$file.sha256"
    echo "published $file"
done

# maven-metadata.xml: <latest> is the last published; <release> the last published that is
# not a SNAPSHOT (kept from the old file when all of these are snapshots).
latest=${*: -1}
release=
for version in "$@"; do
    [[ "$version" == *-SNAPSHOT ]] || release=$version
done
if [[ -z "$release" && -f "$base/maven-metadata.xml" ]]; then
    release=$(sed -n 's:.*<release>\(.*\)</release>.*:\1:p' "$base/maven-metadata.xml")
fi
{
    echo '<?xml version="1.0" encoding="UTF-8"?>'
    echo '<metadata>'
    echo "  <groupId>${group_path//\//.}</groupId>"
    echo "  <artifactId>$artifact</artifactId>"
    echo '  <versioning>'
    echo "    <latest>$latest</latest>"
    [[ -z "$release" ]] || echo "    <release>$release</release>"
    echo '    <versions>'
    for dir in "$base"/*/; do
        echo "      <version>$(basename "$dir")</version>"
    done | sort -V
    echo '    </versions>'
    echo "    <lastUpdated>$(date -u +%Y%m%d%H%M%S)</lastUpdated>"
    echo '  </versioning>'
    echo '</metadata>'
} >"$base/maven-metadata.xml.tmp"
mv "$base/maven-metadata.xml.tmp" "$base/maven-metadata.xml"
echo "updated $base/maven-metadata.xml"
