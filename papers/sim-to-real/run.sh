#!/bin/bash
# Re-measures papers/sim-to-real on one NVIDIA GPU that is NOT in MIG mode (MIG mode is never
# changed), through `migopt serve` on MPS-emulated slices, then regenerates the study:
#   1. calibration: one trace of its own under ELSA and FIFS (15 s each), from which the
#      server's own cost per query is read (raw/calib.*);
#   2. `migopt reproduce` computes each scheduler's simulated capacity under the load-aware
#      model with that cost (results/capacity.csv), and make_traces.py writes Poisson traces
#      at exactly 30, 60 and 85% of it (40 s each);
#   3. evaluation: the six traces, each under its scheduler (raw/load*);
#   4. `migopt reproduce papers/sim-to-real` writes RESULTS.md, the errors and the figures.
# Needs a migopt binary ($MIGOPT, default `migopt`), python3 with PyTorch (CUDA), torchvision and
# transformers, and nvidia-cuda-mps-control. About 6 minutes of GPU time. PLACEMENT=fake runs
# the same steps on CPU-only fake workers (a dry run; it overwrites raw/ like a real one).
# The H200 profiles it predicts with come from:
#   python3 profiles/measure.py --method mps --batches 1,2,4,8,16,32 --iters 50 \
#       --neighbour-load 0,0.3,0.6,1 --out-dir profiles/h200-141gb
set -euo pipefail
cd "$(dirname "$0")"
M=${MIGOPT:-migopt}
P=${PLACEMENT:-mps}
MPS=""
[ "$P" = mps ] && MPS=--start-mps
serve() { $M serve plan.json --scenario scenario.toml --placement "$P" $MPS --worker-logs logs "$@"; }
rm -rf traces stage && mkdir -p raw logs
rm -f raw/calib.* raw/load* raw/rate*
if [ "$P" != fake ] && command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=name,mig.mode.current,driver_version,clocks.current.sm,temperature.gpu \
    --format=csv > logs/nvidia-smi.txt
fi
python3 make_traces.py calib traces
serve --trace traces/calib.csv --scheduler elsa --scheduler fifs --out-dir raw 2>&1 | tee logs/serve-calib.log
(cd ../.. && $M reproduce papers/sim-to-real --out papers/sim-to-real/stage)
python3 make_traces.py eval stage/results/capacity.csv traces
serve --paired --out-dir raw \
  --trace traces/elsa/load30.csv --trace traces/elsa/load60.csv --trace traces/elsa/load85.csv \
  --trace traces/fifs/load30.csv --trace traces/fifs/load60.csv --trace traces/fifs/load85.csv \
  --scheduler elsa --scheduler elsa --scheduler elsa --scheduler fifs --scheduler fifs --scheduler fifs \
  2>&1 | tee logs/serve.log
for f in raw/calib.*.csv raw/load*.csv; do gzip -9f "$f"; done
rm -rf stage
cd ../.. && $M reproduce papers/sim-to-real
