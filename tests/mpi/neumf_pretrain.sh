#!/usr/bin/env bash
# NeuMF pre-training (README, "NeuMF pre-training"): GMF and MLP trained with
# checkpoints, then NeuMF started from both (--pretrain-gmf/--pretrain-mlp).
# Its first epoch already carries what they learnt: HR@10 within a small
# margin of the better of the two. Mismatched checkpoints are refused.
source "$(dirname "$0")/lib.sh"
common=(--users 500 --items 300 --dim 16 --layers 32,16 --topk 10 --sync)
run_job 4 --model gmf "${common[@]}" --epochs 8 --checkpoint-dir "$work/gmf" --metrics-out "$work/gmf.jsonl" \
  || fail "GMF training"
# MLP learns this data more slowly than GMF: a larger lr brings it closer
# (the learning rate is not among the settings the checkpoints must share).
run_job 4 --model mlp "${common[@]}" --epochs 8 --lr 0.005 --checkpoint-dir "$work/mlp" --metrics-out "$work/mlp.jsonl" \
  || fail "MLP training"
# A private TMPDIR: without --checkpoint-dir the combined checkpoint goes
# there and must be gone after the servers loaded it.
mkdir "$work/tmp"
TMPDIR="$work/tmp" run_job 4 --model neumf "${common[@]}" --epochs 1 --lr 0.0002 --pretrain-gmf "$work/gmf" \
  --pretrain-mlp "$work/mlp" --metrics-out "$work/neumf.jsonl" || fail "NeuMF with pre-training"
grep -q "^pretrained: NeuMF from GMF $work/gmf and MLP $work/mlp, alpha 0.5" "$work/out.txt" || fail "no pretrained line"
grep -q "^initialised from: .* (weights only)" "$work/out.txt" || fail "no initialised-from line"
compgen -G "$work/tmp/recsys-neumf-pretrain-*" >/dev/null && fail "the temporary NeuMF checkpoint was left behind"
# Without pre-training, for contrast: one epoch of NeuMF from scratch.
run_job 4 --model neumf "${common[@]}" --epochs 1 --metrics-out "$work/scratch.jsonl" || fail "NeuMF from scratch"
gmf=$(metric "$work/gmf.jsonl" hr@10 8)
mlp=$(metric "$work/mlp.jsonl" hr@10 8)
neumf=$(metric "$work/neumf.jsonl" hr@10 1)
scratch=$(metric "$work/scratch.jsonl" hr@10 1)
echo "HR@10: GMF $gmf, MLP $mlp, NeuMF pre-trained (epoch 1) $neumf, NeuMF from scratch (epoch 1) $scratch"
python3 -c "import sys; g,m,n=map(float,sys.argv[1:]); sys.exit(0 if n >= max(g,m) - 0.03 else 1)" "$gmf" "$mlp" "$neumf" \
  || fail "pre-trained NeuMF's epoch 1 HR@10 $neumf is below max(GMF $gmf, MLP $mlp) - 0.03"
python3 -c "import sys; n,s=map(float,sys.argv[1:]); sys.exit(0 if n >= s + 0.1 else 1)" "$neumf" "$scratch" \
  || fail "pre-trained NeuMF's epoch 1 HR@10 $neumf is not clearly above the one from scratch, $scratch"

# With --checkpoint-dir the combined model is kept there as the run's start.
run_job 4 --model neumf "${common[@]}" --epochs 1 --pretrain-gmf "$work/gmf" --pretrain-mlp "$work/mlp" \
  --checkpoint-dir "$work/nck" || fail "NeuMF with pre-training and --checkpoint-dir"
run_job 1 --verify-checkpoint "$work/nck/pretrained-neumf" || fail "the kept pre-trained NeuMF does not verify"

# Refusals: exit 2, a message naming the checkpoint.
expect_refusal() {
  local message="$1"; shift
  local rc=0
  run_job 4 "$@" || rc=$?
  [[ $rc -eq 2 ]] || fail "expected exit 2, got $rc for: $*"
  grep -qF -- "$message" "$work/out.txt" || fail "expected the message '$message' for: $*"
}
expect_refusal "--dim was '16', this run has '8'" \
  --model neumf "${common[@]}" --dim 8 --epochs 1 --pretrain-gmf "$work/gmf" --pretrain-mlp "$work/mlp"
expect_refusal "--layers was '32,16', this run has '64,16'" \
  --model neumf "${common[@]}" --layers 64,16 --epochs 1 --pretrain-gmf "$work/gmf" --pretrain-mlp "$work/mlp"
expect_refusal "--pretrain-gmf needs a checkpoint of model 'gmf'; this one is of model 'mlp'" \
  --model neumf "${common[@]}" --epochs 1 --pretrain-gmf "$work/mlp" --pretrain-mlp "$work/mlp"
expect_refusal "--pretrain-mlp needs a checkpoint of model 'mlp'; this one is of model 'gmf'" \
  --model neumf "${common[@]}" --epochs 1 --pretrain-gmf "$work/gmf" --pretrain-mlp "$work/gmf"
expect_refusal "--pretrain-gmf/--pretrain-mlp initialise a NeuMF model" \
  --model mlp "${common[@]}" --epochs 1 --pretrain-gmf "$work/gmf" --pretrain-mlp "$work/mlp"
echo ok
