#!/usr/bin/env bash
# launch/plot.py: two real runs' metrics files drawn into a PNG of the
# requested pixel size (default and --size); the final record is not an
# epoch; unreadable input is refused with a message. SKIPs (77) without
# matplotlib (Debian: python3-matplotlib).
source "$(dirname "$0")/lib.sh"
if ! python3 -c 'import matplotlib' 2>/dev/null && ! /usr/bin/python3 -c 'import matplotlib' 2>/dev/null; then
  echo "SKIP: matplotlib not found (apt-get install python3-matplotlib)"
  exit 77
fi
plot="$root/launch/plot.py"
for model in mf fm; do
  run_job 3 --model "$model" --epochs 3 --users 300 --items 200 --topk 5,10 --metrics-out "$work/$model.jsonl" \
    || fail "$model job failed"
done

# png_size FILE: "WIDTH HEIGHT" from the PNG header (IHDR).
png_size() {
  python3 - "$1" <<'PY'
import struct, sys
data = open(sys.argv[1], "rb").read(24)
assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR", "not a PNG"
print(*struct.unpack(">II", data[16:24]))
PY
}
"$plot" "$work/mf.jsonl" "$work/fm.jsonl" --out "$work/both.png" > "$work/out.txt" 2>&1 || fail "plot of two runs failed"
[ "$(png_size "$work/both.png")" = "1200 500" ] || fail "default size: $(png_size "$work/both.png"), expected 1200 500"
"$plot" "$work/mf.jsonl" --out "$work/one.png" --size 640x360 --title "MF" --labels mf --k 10 > "$work/out.txt" 2>&1 \
  || fail "plot of one run failed"
[ "$(png_size "$work/one.png")" = "640 360" ] || fail "--size 640x360 gave $(png_size "$work/one.png")"
echo "ok: PNGs of 1200x500 and 640x360"

# Only the final record: no epochs to draw.
tail -n 1 "$work/mf.jsonl" > "$work/final_only.jsonl"
if "$plot" "$work/final_only.jsonl" --out "$work/x.png" > "$work/out.txt" 2>&1; then fail "final-only file plotted"; fi
grep -q "final_only.jsonl: no epoch records" "$work/out.txt" || fail "no message for a file without epochs"
printf '{"epoch": 1, "loss": 0.5}\nnot json\n' > "$work/broken.jsonl"
if "$plot" "$work/broken.jsonl" --out "$work/x.png" > "$work/out.txt" 2>&1; then fail "broken file plotted"; fi
grep -q "broken.jsonl:2: not a JSON record" "$work/out.txt" || fail "no file:line for a broken record"
if "$plot" "$work/mf.jsonl" --out "$work/x.png" --size 12x > "$work/out.txt" 2>&1; then fail "bad --size accepted"; fi
grep -q -- "--size: expected WIDTHxHEIGHT" "$work/out.txt" || fail "no message for a bad --size"
[ ! -e "$work/x.png" ] || fail "PNG written for bad input"
echo "ok"
