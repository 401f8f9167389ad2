#!/usr/bin/env bash
# Builds the real peers the interop tests and benchmarks run against, from the Go module proxy, into a
# cache outside the repository (nothing here is committed): go-choria (the `choria` CLI: server, broker,
# req) and a current nats-server. Each is skipped when its pinned version is already built.
#
#   bash infra/peers.sh            # build what is missing, print where the binaries are
#   CHORIA_EDGE_PEERS=/some/dir bash infra/peers.sh
#
# go-choria needs two steps a plain `go install` skips:
# - its RPC agents (rpcutil, discovery, ...) are registered by files `go generate` writes from
#   packager/plugins.yaml and its repository ignores, so the build runs its generator in a copy of the
#   module's source;
# - its CLI imports github.com/choria-io/appbuilder v0.17.1, which the module proxy reachable here refuses
#   (403 "This module version is not available"; every 0.12-0.18 release likewise). Only the app-builder
#   commands use it (`choria tool builder` and running the binary under another name), which no test
#   needs, so the copy drops those two entry points before building. Servers, brokers and `choria req`
#   are untouched.
# The binary is built with build.TLS=false: it speaks plain NATS, like the test nats-servers, while
# requests are still signed and verified with the x509 file security provider (see README,
# "Compatibility").
set -euo pipefail

GO_CHORIA_VERSION=v0.30.2
NATS_SERVER_VERSION=v2.15.3

cache=${CHORIA_EDGE_PEERS:-${XDG_CACHE_HOME:-$HOME/.cache}/choria-edge/peers}
mkdir -p "$cache"
export GOMODCACHE="$cache/gomod" GOCACHE="$cache/gocache" GOFLAGS=-mod=mod GOTOOLCHAIN=local

choria_bin="$cache/go-choria-$GO_CHORIA_VERSION/choria"
nats_bin="$cache/nats-server-$NATS_SERVER_VERSION/nats-server"

if ! command -v go >/dev/null 2>&1; then
  echo "peers: Go is not installed; the interop tests need it to build go-choria and nats-server" >&2
  exit 1
fi

if [ ! -x "$nats_bin" ]; then
  echo "peers: building nats-server $NATS_SERVER_VERSION" >&2
  GOBIN="$(dirname "$nats_bin")" go install "github.com/nats-io/nats-server/v2@$NATS_SERVER_VERSION"
fi

if [ ! -x "$choria_bin" ]; then
  echo "peers: building go-choria $GO_CHORIA_VERSION (a first build takes a few minutes)" >&2
  module_dir=$(go mod download -json "github.com/choria-io/go-choria@$GO_CHORIA_VERSION" |
    sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
  [ -d "$module_dir" ] || { echo "peers: go-choria $GO_CHORIA_VERSION: no module source" >&2; exit 1; }
  src="$cache/go-choria-src-$GO_CHORIA_VERSION"
  rm -rf "$src"
  cp -r "$module_dir" "$src"
  chmod -R u+w "$src"
  (
    cd "$src"
    go run plugin/gen.go
    rm cmd/tool_builder.go
    # Drop the app-builder imports and the two functions and one call that use them (see above).
    perl -0pi -e '
      s{\n\t"[^"\n]*appbuilder[^"\n]*"}{}g;
      s{\n\t"github.com/adrg/xdg"}{};
      s{\n\t"strings"}{};
      s{\n\tif runtime\.GOOS != "windows" && !strings\.Contains[^\n]*\n\t\trunBuilder\(\)\n\t\}\n}{\n};
      s{\nfunc builderOptions\(\).*?\n\}\n\nfunc runBuilder\(\).*?\n\}\n}{}s;
    ' cmd/cmd.go
    if grep -q appbuilder cmd/cmd.go; then
      echo "peers: go-choria $GO_CHORIA_VERSION: cmd/cmd.go changed shape, update infra/peers.sh" >&2
      exit 1
    fi
    mkdir -p "$(dirname "$choria_bin")"
    go build -trimpath -o "$choria_bin.tmp" -ldflags "-s -w \
      -X github.com/choria-io/go-choria/build.TLS=false \
      -X github.com/choria-io/go-choria/build.Version=${GO_CHORIA_VERSION#v}" .
  )
  mv "$choria_bin.tmp" "$choria_bin"
  rm -rf "$src"
fi

echo "CHORIA_BIN=$choria_bin"
echo "NATS_SERVER_NEXT_BIN=$nats_bin"
