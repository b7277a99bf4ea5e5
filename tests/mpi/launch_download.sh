#!/usr/bin/env bash
# launch/download_movielens.sh without a network: argument handling, the
# offline error path (a clear message, exit 3, nothing left behind), and,
# from a local file:// mirror (MOVIELENS_URL_BASE), the checksum refusal
# (exit 4) and the unpacking and printed options with --no-verify. No test
# downloads from GroupLens.
source "$(dirname "$0")/lib.sh"
dl="$root/launch/download_movielens.sh"
cd "$work"

# expect RC PATTERN ARGS...: the script exits RC and says PATTERN.
expect() {
  local want="$1" pattern="$2"; shift 2
  set +e
  "$dl" "$@" > "$work/out.txt" 2>&1
  local rc=$?
  set -e
  [ "$rc" -eq "$want" ] || fail "exit $rc, expected $want, for: $*"
  grep -q -- "$pattern" "$work/out.txt" || fail "message should match '$pattern' for: $*"
  echo "ok: $* -> exit $rc: $(grep -m1 -- "$pattern" "$work/out.txt")"
}
expect 2 "usage:"
expect 2 "unknown version '5m'; expected one of: 100k, 1m, 20m, 25m" 5m
expect 2 "unknown option '--fast'" 100k --fast
expect 2 "unexpected argument 'extra'" 100k d extra
expect 0 "usage:" --help

# Offline: nothing listens on port 9 (discard) of this machine.
MOVIELENS_URL_BASE=http://127.0.0.1:9 expect 3 "cannot download http://127.0.0.1:9/ml-100k.zip (no network" 100k off
[ ! -e off ] || fail "offline run left $work/off behind"

# A mirror with archives that are not GroupLens's.
mkdir -p mirror
python3 - <<'PY'
import zipfile
for name, member in (("ml-100k", "u.data"), ("ml-1m", "ratings.dat"), ("ml-25m", "ratings.csv")):
    with zipfile.ZipFile(f"mirror/{name}.zip", "w") as z:
        z.writestr(f"{name}/{member}", "1\t2\t5\t100\n")
PY
export MOVIELENS_URL_BASE="file://$work/mirror"
expect 4 "data/ml-100k.zip does not match the published archive; removed it" 100k
grep -q "expected 4924029 bytes, SHA-256 50d2a982c66986937beb9ffb3aa76efe955bf3d5c6b761f4e3a7cd717c6a3229" out.txt \
  || fail "mismatch message lacks the expected checksum"
[ ! -e data/ml-100k.zip ] && [ ! -e data/ml-100k ] || fail "a rejected archive was kept or unpacked"

expect 0 "  --format ml-100k --data data/ml-100k$" 100k --no-verify
grep -q "not verified (--no-verify)" out.txt || fail "--no-verify not reported"
[ -f data/ml-100k/u.data ] || fail "not unpacked"
expect 0 "nothing to download" 100k  # already unpacked: no download, same options
grep -qx "  --format ml-100k --data data/ml-100k" out.txt || fail "options not printed for an unpacked set"
expect 0 "  --format ml-1m --data sets/ml-1m$" 1m sets --no-verify
expect 0 "  --format csv --data sets/ml-25m/ratings.csv$" --no-verify 25m sets
echo "ok"
