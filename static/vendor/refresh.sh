#!/usr/bin/env bash
# Refreshes the vendored browser libraries from the npm registry at the pinned versions,
# checking each tarball against the integrity hash the registry publishes.
# Usage: static/vendor/refresh.sh   (needs node and npm; run from anywhere)
set -euo pipefail

HLS_JS_VERSION=1.7.4

here="$(cd "$(dirname "$0")" && pwd)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fetch() {  # fetch NAME VERSION -> unpacks into $work/NAME/package
    local name="$1" version="$2"
    mkdir -p "$work/$name"
    (cd "$work/$name" && npm pack --silent "$name@$version" >/dev/null)
    local tarball expected actual
    tarball="$(ls "$work/$name"/*.tgz)"
    expected="$(npm view "$name@$version" dist.integrity)"
    actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
    if [ "$expected" != "$actual" ]; then
        echo "integrity mismatch for $name@$version" >&2
        exit 1
    fi
    tar -xzf "$tarball" -C "$work/$name"
}

fetch hls.js "$HLS_JS_VERSION"
mkdir -p "$here/hls.js"
cp "$work/hls.js/package/dist/hls.min.js" "$here/hls.js/hls.min.js"
cp "$work/hls.js/package/LICENSE" "$here/hls.js/LICENSE"
echo "$HLS_JS_VERSION" > "$here/hls.js/VERSION"
echo "hls.js $HLS_JS_VERSION vendored into $here/hls.js"
