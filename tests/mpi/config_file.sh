#!/usr/bin/env bash
# --config: a config file sets the model (and more), a command-line flag
# overrides its dim; the effective configuration is printed at start and
# saved beside the metrics as METRICS.config, and a rerun from that file
# gives the same (--sync: identical) metrics. A bad file stops the job with
# its file and line.
source "$(dirname "$0")/lib.sh"
cat > "$work/run.toml" <<'TOML'
# small synthetic run
model = "mf"
dim = 32
epochs = 2
sync = true
topk = [5, 10]
users = 300
items = 200
TOML
run_job 3 --config "$work/run.toml" --dim 8 --metrics-out "$work/a.jsonl" || fail "job with --config failed"
grep -q '^config: model=mf loss=bce dim=8 .* topk=5,10 .* sync seed=1$' "$work/out.txt" \
  || fail "config line does not show the file's model and the command line's dim"
[ "$(grep -c '^epoch' "$work/out.txt")" -eq 2 ] || fail "expected 2 epochs (from the file)"
[ "$(metric "$work/a.jsonl" hr@5)" != "" ] || fail "no hr@5 in metrics"
cfg="$work/a.jsonl.config"
[ -f "$cfg" ] || fail "no $cfg beside the metrics"
grep -qx 'model = "mf"' "$cfg" && grep -qx 'dim = 8' "$cfg" && grep -qx 'sync = true' "$cfg" \
  || { cat "$cfg" >&2; fail "$cfg lacks the effective options"; }
grep -q '^# effective: model=mf loss=bce dim=8 ' "$cfg" || fail "$cfg lacks the effective summary"

run_job 3 --config "$cfg" --metrics-out "$work/b.jsonl" || fail "rerun from the saved config failed"
same_metrics "$work/a.jsonl" "$work/b.jsonl" || fail "rerun from $cfg differs"

printf 'model = "mf"\ndimension = 8\n' > "$work/bad.toml"
if run_job 3 --config "$work/bad.toml" --metrics-out "$work/c.jsonl"; then fail "bad config file accepted"; fi
grep -q "$work/bad.toml:2: unknown option 'dimension'" "$work/out.txt" || fail "error does not name file and line"
[ ! -e "$work/c.jsonl" ] && [ ! -e "$work/c.jsonl.config" ] || fail "files written for a refused config"
echo "ok"
