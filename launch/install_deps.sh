#!/usr/bin/env bash
# Installs the Debian packages recsys-ps needs to build and test, skipping
# those already installed. Uses sudo when not root.
#
#   launch/install_deps.sh [--slurm]
#
# --slurm also installs Debian's Slurm and munge (3 MB), which
# tests/mpi/launch_slurm.sh needs to run a one-node cluster (it skips
# without them). They are opt-in: on a laptop the packages enable munge and
# slurmd services at boot, and on a cluster node Debian's sbatch could shadow
# the site's own Slurm.
set -euo pipefail
packages=(build-essential cmake openmpi-bin libopenmpi-dev libeigen3-dev libboost-serialization-dev
          libcxxopts-dev libgtest-dev nlohmann-json3-dev python3 python3-matplotlib python3-numpy)
case "${1:-}" in
  --slurm) packages+=(slurmctld slurmd slurm-client munge) ;;
  "") ;;
  *) echo "usage: launch/install_deps.sh [--slurm]" >&2; exit 2 ;;
esac
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install_deps: all packages present"
  exit 0
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "install_deps: installing ${missing[*]}"
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
