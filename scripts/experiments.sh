#!/usr/bin/env bash
# The paper's tables as DVC experiments, queued and run the DVC-native way.
#   bash scripts/experiments.sh ablation   # inputs {features, spectrogram, both} x protocol {paper, honest}
#   bash scripts/experiments.sh loco       # leave one corpus out, for each of the four corpora
#   bash scripts/experiments.sh sweep      # small learning-rate / dropout sweep
# Then: python scripts/exp_table.py --write   (README tables from `dvc exp show --json`)
# The committed workspace result is the honest protocol with inputs=both, so it is not queued again.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/.venv/bin:$PATH"
# Queued runs happen in temporary copies of the repo: make each import its own copy's `ser`
# package (cwd first) rather than the editable install, which points at this working tree.
export PYTHONPATH=.
PAPER=(-S prepare.split=random -S augment.before_split=true)
for what in "${@:-ablation}"; do
  case "$what" in
    ablation)
      for inputs in features spectrogram; do
        dvc exp run --queue -n "honest-$inputs" -S "train.inputs=$inputs"
      done
      for inputs in features spectrogram both; do
        dvc exp run --queue -n "paper-$inputs" "${PAPER[@]}" -S "train.inputs=$inputs"
      done ;;
    loco)
      for corpus in ravdess_speech ravdess_song tess savee; do
        dvc exp run --queue -n "loco-$corpus" -S prepare.split=corpus -S "prepare.test_corpora=[$corpus]"
      done ;;
    sweep)  # on the features-only model: minutes per run instead of ten
      dvc exp run --queue -S train.inputs=features -S 'train.lr=0.0005,0.002' -S 'train.dropout=0.3,0.5' ;;
    *) echo "error: unknown experiment group '$what' (ablation, loco, sweep)" >&2; exit 2 ;;
  esac
done
dvc queue start -j 1
# `dvc queue start` returns at once; wait until nothing is queued or running.
# (grep without -q reads all of dvc's output, so pipefail never sees a broken pipe)
while dvc queue status 2>/dev/null | grep -E "Queued|Running" > /dev/null; do sleep 30; done
dvc queue status
dvc exp show --all-commits --json > metrics/experiments.json  # a committed snapshot of every run's params and metrics
python scripts/exp_table.py --write
