#!/usr/bin/env bash
# The README's second command (and what CI runs): installs what is missing,
# builds, and runs every test (unit tests and mpirun integration tests).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/install_deps.sh"
"$root/launch/build.sh"
cd "${BUILD_DIR:-$root/build}"
ctest --output-on-failure -j2 "$@"
