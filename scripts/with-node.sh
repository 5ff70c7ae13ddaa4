#!/usr/bin/env bash
# Runs a command with Lifeboat's Node (>= 22.19) and the stack's binaries on PATH, after making
# sure they are installed.
set -euo pipefail
# shellcheck source=bootstrap.sh
source "$(dirname "${BASH_SOURCE[0]}")/bootstrap.sh"
exec "$@"
