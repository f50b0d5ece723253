#!/usr/bin/env bash
# The ablation table as DVC experiments: each lever switched off (or changed) on its own, from
# the committed configuration, with `dvc exp run -S ... cv loco` in this workspace, which is reset to
# the committed state after each run (`dvc exp run --temp` would rebuild every stage from scratch in
# its copy). Each experiment reruns only the stages its params touch, and only up to cv and loco
# (the shipped model is not retrained). Commit your work first: the reset discards edits to
# params.yaml, dvc.lock, metrics/, plots/ and dvclive/.
#   bash scripts/experiments.sh            # every ablation below, one after the other
#   bash scripts/experiments.sh abl-norm-global abl-no-mixup   # just these
# It ends by rebuilding the table in docs/ablations.md (scripts/exp_table.py) from
# `dvc exp show --json` and the committed snapshot metrics/experiments.json.
# Wall times go to metrics/experiment_times.json.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# Relative to the committed configuration: encoder + eGeMAPS inputs since issue 13; augmentation
# off since the first ablation round (whose rows switched single methods off from "all four on").
declare -A ABLATIONS=(
  # the pretrained encoder (issue 13): inputs, layers, pooling, and what holds up on single files
  [abl-no-encoder]="-S train.inputs=[features,egemaps]"
  [abl-encoder-only]="-S train.inputs=[encoder]"
  [abl-encoder-features-egemaps]="-S train.inputs=[encoder,features,egemaps]"
  [enc-layers-1]="-S encoder.layers=[1]"
  [enc-layers-2]="-S encoder.layers=[2]"
  [enc-layers-3]="-S encoder.layers=[3]"
  [enc-layers-4]="-S encoder.layers=[4]"
  [enc-layers-6]="-S encoder.layers=[6]"
  [enc-layers-all]="-S encoder.layers=[0,1,2,3,4,5,6]"
  [enc-pool-mean-std]="-S encoder.pooling=mean_std"
  [enc-pool-std]="-S encoder.pooling=std"
  [file-share-0.5]="-S normalize.file_share=0.5"
  [file-norm-global]="-S normalize.mode=global"
  [abl-norm-global]="-S normalize.mode=global"
  [abl-norm-utterance]="-S normalize.mode=utterance"
  [abl-norm-corpus]="-S normalize.mode=corpus"
  [abl-no-balance]="-S train.balance=none"
  [abl-balance-speaker]="-S train.balance=speaker"
  [abl-no-mixup]="-S train.mixup=0"
  [abl-no-egemaps]="-S train.inputs=[features]"
  [abl-egemaps-only]="-S train.inputs=[egemaps]"
  [abl-add-augment]="-S augment.methods=[gain,eq,pitch,noise]"
  [abl-add-gain]="-S augment.methods=[gain]"
  [abl-add-eq]="-S augment.methods=[eq]"
  [abl-add-pitch]="-S augment.methods=[pitch]"
  [abl-add-noise]="-S augment.methods=[noise]"
  [abl-spectrogram]="-S train.inputs=[features,egemaps,spectrogram]"
  [abl-paper-protocol]="-S prepare.split=random -S augment.before_split=true"
  [alt-epochs-40]="-S train.epochs=40"
  [alt-dense-256]="-S train.dense_units=256"
  # know the voice (issue 20): shrinkage for small groups, and training on them
  [ref-prior-2]="-S normalize.prior_clips=2 -S normalize.var_prior_clips=2"
  [ref-prior-2-var-10]="-S normalize.prior_clips=2 -S normalize.var_prior_clips=10"
  [ref-prior-2-var-train]="-S normalize.prior_clips=2 -S normalize.var_prior_clips=1000"
  [ref-p2v10-small]="-S normalize.prior_clips=2 -S normalize.var_prior_clips=10 -S normalize.small_groups=0.5"
  [ref-p2v10-ship-linear]="-S normalize.prior_clips=2 -S normalize.var_prior_clips=10 -S train.model=linear"
  [ref-prior-correction]="-S calibration.prior_correction=true"
  [ref-p2v10-lone-training]="-S normalize.prior_clips=2 -S normalize.var_prior_clips=10 -S normalize.lone_file=training"
  # cleaning (issue 21): the DC offset alone removed, no high-pass
  [clean-mean-only]="-S prepare.high_pass_hz=0"
)
# Most informative first: a run can be stopped part-way and the table still shows what finished.
ORDER=(ref-prior-2 ref-prior-2-var-10 ref-prior-2-var-train ref-p2v10-small ref-p2v10-lone-training
       ref-p2v10-ship-linear ref-prior-correction
       abl-no-encoder abl-encoder-only abl-encoder-features-egemaps enc-pool-mean-std enc-pool-std file-share-0.5 file-norm-global
       enc-layers-all enc-layers-4 enc-layers-6 enc-layers-1 enc-layers-2 enc-layers-3
       abl-norm-global abl-norm-corpus abl-no-balance abl-no-egemaps abl-add-augment abl-add-pitch abl-add-noise
       abl-add-eq abl-add-gain abl-egemaps-only abl-balance-speaker abl-no-mixup abl-norm-utterance
       abl-paper-protocol alt-epochs-40 alt-dense-256 abl-spectrogram)
# An interrupted `dvc exp run` can leave HEAD detached; commits made after that would miss the branch.
git symbolic-ref -q HEAD > /dev/null || { echo "error: HEAD is detached (git checkout <branch> first)" >&2; exit 2; }
names=("${@:-${ORDER[@]}}")
for name in "${names[@]}"; do
  [[ -v "ABLATIONS[$name]" ]] || { echo "error: unknown experiment '$name' (known: ${ORDER[*]})" >&2; exit 2; }
done
for name in "${names[@]}"; do
  start=$(date +%s)
  # shellcheck disable=SC2086
  dvc exp run -n "$name" ${ABLATIONS[$name]} cv loco
  seconds=$(( $(date +%s) - start ))
  # Back to the committed state (HEAD, not the index: dvc exp run stages its changes); the times file stays.
  git checkout -q HEAD -- params.yaml dvc.lock plots dvclive $(git ls-files metrics | grep -v experiment_times.json)
  dvc checkout -q
  python - "$name" "$seconds" <<'PY'
import json, sys
from pathlib import Path
path = Path("metrics/experiment_times.json")
times = json.loads(path.read_text()) if path.is_file() else {}
times[sys.argv[1]] = int(sys.argv[2])
path.write_text(json.dumps(dict(sorted(times.items())), indent=2) + "\n")
PY
done
# A committed snapshot of every run's params and metrics. Experiment refs stay in the clone that
# ran them, so the snapshot keeps the committed one's runs too (--keep).
mkdir -p .dvc/tmp
git show HEAD:metrics/experiments.json > .dvc/tmp/experiments.committed.json 2>/dev/null \
  || echo "[]" > .dvc/tmp/experiments.committed.json
dvc exp show --all-commits --json > .dvc/tmp/experiments.now.json
python scripts/exp_table.py --json .dvc/tmp/experiments.now.json --keep .dvc/tmp/experiments.committed.json \
  --save metrics/experiments.json --write
