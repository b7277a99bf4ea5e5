#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz) with clang into build-fuzz/ (or
# $FUZZ_BUILD_DIR) and runs each for a bounded time:
#
#   launch/fuzz.sh [SECONDS] [TARGET...]   # default 60 s per target, every target
#
# Targets: one per data reader (ml-100k u.data, u.user, u.item; ml-1m; ncf
# with its .test.negative; csv with --eval-candidates), the pull/push frames
# as a server reads them, control messages, and the checkpoint loader
# (MANIFEST, shard files, LATEST). Seed inputs are written here (small
# made-up files, never MovieLens data; for fuzz_checkpoint, a real checkpoint
# of a tiny synthetic job run here) into build-fuzz/seeds/TARGET;
# what the fuzzer finds grows build-fuzz/corpus/TARGET from run to run.
# A crash, sanitizer report, leak, timeout (10 s) or out-of-memory (2 GiB)
# saves the input as build-fuzz/findings/TARGET-* and makes the script exit
# non-zero; replay one with `build-fuzz/tests/fuzz/TARGET FILE`. Once fixed,
# keep the input in tests/fuzz/regressions/TARGET/ (run at every start).
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
seconds="${1:-60}"
[ $# -gt 0 ] && shift
build="${FUZZ_BUILD_DIR:-$root/build-fuzz}"
all=(fuzz_ml100k_data fuzz_ml100k_user fuzz_ml100k_item fuzz_ml1m fuzz_ncf fuzz_csv fuzz_wire_frame fuzz_control
     fuzz_checkpoint)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=("${all[@]}")

# clang 14 and its runtimes (libFuzzer is in libclang-rt-14-dev, which
# --no-install-recommends would leave out), on top of the project's packages.
"$root/launch/install_deps.sh"
missing=()
for p in clang-14 libclang-rt-14-dev; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  echo "fuzz: installing ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

cmake -S "$root" -B "$build" -DCMAKE_CXX_COMPILER=clang++-14 -DCMAKE_BUILD_TYPE=RelWithDebInfo -DRECSYS_FUZZ=ON \
  >/dev/null
build_targets=("${targets[@]}")
# fuzz_checkpoint's seeds come from a checkpoint written by a real job.
[[ " ${targets[*]} " == *" fuzz_checkpoint "* ]] && build_targets+=(recsys_worker)
cmake --build "$build" -j"$(nproc)" --target "${build_targets[@]}"

# ---- seeds: one small well-formed input per shape (see each target's header) ----
seeds="$build/seeds"
rm -rf "$seeds"
mkdir -p "$seeds" "$build/corpus" "$build/findings"
seed() {  # seed TARGET NAME CONTENT (printf format)
  mkdir -p "$seeds/$1"
  # shellcheck disable=SC2059
  printf "$3" > "$seeds/$1/$2"
}
seed fuzz_ml100k_data ok '196\t242\t3\t881250949\n186\t302\t3\t891717742\n22\t377\t1\t878887116\n196\t377\t4\t881250950\n'
seed fuzz_ml100k_data crlf '1\t1\t5\t874965758\r\n1\t2\t3\t876893171\r\n2\t1\t4\t888550871\r\n\r\n'
seed fuzz_ml100k_user ok '1|24|M|technician|85711\n2|53|F|other|94043\n3|23|M|writer|32067\n'
flags0='0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0|0'
flags3='0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0'
seed fuzz_ml100k_item ok "10|Toy Story (1995)|01-Jan-1995||http://us.imdb.com/M/title-exact?Toy|$flags3\n11|A|B (1995)|01-Jan-1995||http://x|$flags0\n"
seed fuzz_ml1m all '1::1193::5::978300760\n1::661::3::978302109\n2::1193::4::978300761\n%%%%\n1::F::1::10::48067\n2::M::56::16::70072\n%%%%\n1193::One Flew Over (1975)::Drama\n661::James and the Giant Peach (1996)::Animation|Children'"'"'s|Musical\n'
seed fuzz_ml1m ratings '1::1193::5::978300760\n2::661::3.5::978302109\n'
seed fuzz_ncf all '0\t32\t4\t978824330\n0\t34\t4\t978824331\n1\t32\t5\t978824332\n1\t35\t5\t978824333\n%%%%\n0\t25\t5\t978824351\n1\t133\t3\t978824352\n%%%%\n(0,25)\t1064\t174\t2791\n(1,133)\t1072\t3648\t3640\t\n'
seed fuzz_csv ts 'user,item,ts\n1,2,3\n1,5,4\n2,3,1\n2,4,2\nu9,"i7",5\n'
seed fuzz_csv plain 'user_id,item_id\r\n7,8\r\n7,9\r\n'
seed fuzz_csv ratings 'userId,movieId,rating,timestamp\n1,2,3.5,1112486027\n1,29,3.5,1112484676\n'
seed fuzz_csv candidates 'user,item,ts\n2,3,1\n2,4,2\n4,5,1\n4,6,2\n%%%%\n(2,4)\t1\t5\n(4,6)\t3\t5\n'
for t in "${targets[@]}"; do  # binary seeds, made by the target's own encoders
  case "$t" in
    fuzz_wire_frame|fuzz_control) mkdir -p "$seeds/$t"; RECSYS_FUZZ_SEEDS="$seeds/$t" "$build/tests/fuzz/$t" ;;
    fuzz_checkpoint)
      # Two tiny jobs of 2 servers write real checkpoints: MF with AdaGrad
      # state (sparse tables) and NeuMF (dense blocks, Adam state). The
      # instrumented build runs them; Open MPI's leaks are not ours.
      mkdir -p "$seeds/$t" "$build/seed-checkpoints"
      for spec in mf:adagrad neumf:adam; do
        model="${spec%%:*}"
        ck="$build/seed-checkpoints/$model"
        rm -rf "$ck"
        ASAN_OPTIONS=detect_leaks=0 RECSYS_BIN="$build/recsys_worker" "$root/launch/local.sh" -n 4 -- \
          --model "$model" --optimizer "${spec#*:}" --users 30 --items 40 --interactions-per-user 6 --eval-negatives 10 --dim 4 --epochs 1 --servers 2 --checkpoint-dir "$ck" \
          >"$ck.log" 2>&1 || { cat "$ck.log"; exit 1; }
        RECSYS_FUZZ_SEEDS="$seeds/$t" RECSYS_FUZZ_CHECKPOINT="$ck/ckpt-1" "$build/tests/fuzz/$t"
        for f in real body fixed; do mv "$seeds/$t/$f" "$seeds/$t/$model-$f"; done
      done ;;
  esac
done
# Separators and tokens of the text formats.
cat > "$build/readers.dict" <<'DICT'
"\x09"
"::"
"|"
","
"\x0a%%\x0a"
"\x0d\x0a"
"("
")"
"-"
"18446744073709551616"
"9223372036854775808"
"rating"
"Drama"
"(no genres listed)"
"M"
"F"
DICT
# Field names and markers of the manifest and shard files.
cat > "$build/checkpoint.dict" <<'DICT'
"recsys-ps checkpoint\x0a"
"version 1\x0a"
"epoch "
"model "
"servers "
"workers "
"setting "
"table "
"shard "
"result "
"checksum "
"shard-0.bin"
"shard-1.bin"
"ckpt-1"
".."
"/"
"RPSSHARD"
"RPSEND!!"
"\x01\x00\x00\x00"
"\xff\xff\xff\xff\xff\xff\xff\x7f"
"18446744073709551615"
"0x1p+0"
"\x0a%%\x0a"
DICT

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"
failed=()
summary="$build/fuzz-summary.txt"
: > "$summary"
for t in "${targets[@]}"; do
  dict=()
  case "$t" in
    fuzz_wire_frame|fuzz_control) ;;
    fuzz_checkpoint) dict=(-dict="$build/checkpoint.dict") ;;
    *) dict=(-dict="$build/readers.dict") ;;
  esac
  mkdir -p "$build/corpus/$t"
  # Inputs of past findings (tests/fuzz/regressions) run first, every time.
  inputs=("$build/corpus/$t" "$seeds/$t")
  [ -d "$root/tests/fuzz/regressions/$t" ] && inputs+=("$root/tests/fuzz/regressions/$t")
  log="$build/findings/$t.log"
  echo "fuzz: $t for ${seconds}s"
  set +e
  "$build/tests/fuzz/$t" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/findings/$t-" "${dict[@]}" "${inputs[@]}" >"$log" 2>&1
  rc=$?
  set -e
  execs="$(grep -m1 'stat::number_of_executed_units' "$log" | awk '{print $2}')"
  cov="$(grep -E '^#[0-9]+' "$log" | tail -n1 | grep -oE 'cov: [0-9]+' || true)"
  corpus="$(find "$build/corpus/$t" -type f | wc -l)"
  if [ "$rc" -eq 0 ]; then result="no finding"; else result="FINDING (exit $rc, see $log)"; failed+=("$t"); fi
  printf '%-18s %5ss %10s execs  %-9s corpus %5s  %s\n' "$t" "$seconds" "${execs:-?}" "${cov:-cov: ?}" "$corpus" \
    "$result" | tee -a "$summary"
  [ "$rc" -eq 0 ] || tail -n 40 "$log"
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: findings in ${failed[*]} (inputs in $build/findings/)" >&2
  exit 1
fi
echo "fuzz: no findings ($summary)"
