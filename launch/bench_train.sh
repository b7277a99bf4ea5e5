#!/usr/bin/env bash
# End-to-end training benchmark on MovieLens-100k: every model, 3 ranks
# (1 coordinator, 1 server, 1 worker), async, batch 256, dim 32, Adam, 4
# negatives; medians of 3 runs as a table and JSON. With --torch, also a plain
# PyTorch trainer of the same models (launch/bench_torch.py; needs Debian's
# python3-torch, used by this benchmark only) and the ratio ours/torch.
#
#   launch/bench_train.sh [--torch] [--eval-full] [--models mf,fm] [--epochs 4] [--repeats 3] [--json FILE]
#   launch/bench_train.sh --workers 1,2,4,8,14 --models mf   (scaling: 1 server, W workers)
#
# RECSYS_BIN picks the binary (default build/recsys_worker), ML100K_DIR the data
# (default ../shared/datasets/ml-100k; the benchmark is skipped without it).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export RECSYS_BIN="${RECSYS_BIN:-$root/build/recsys_worker}"
if [ "$(id -u)" -eq 0 ]; then
  export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
fi
# PyTorch from Debian lives in /usr/bin/python3, which pyenv/venv may shadow.
[ -z "${TORCH_PYTHON:-}" ] && [ -x /usr/bin/python3 ] && export TORCH_PYTHON=/usr/bin/python3
exec python3 "$root/launch/bench_train.py" "$@"
