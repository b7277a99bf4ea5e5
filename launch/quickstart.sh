#!/usr/bin/env bash
# The README's first command: installs what is missing, builds, and trains FM
# on the built-in synthetic data with 16 ranks, printing HR@10/NDCG@10 per epoch.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
"$root/launch/install_deps.sh"
"$root/launch/build.sh"
exec "$root/launch/local.sh" -n 16 -- --model fm --epochs 10 "$@"
