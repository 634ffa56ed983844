#!/bin/sh
# Re-measures papers/sim-to-real on one NVIDIA GPU that is NOT in MIG mode (MIG mode is never
# changed): six traces x {ELSA, FIFS} through `migopt serve` on MPS-emulated slices, then the
# study is regenerated. Needs a migopt binary ($MIGOPT, default `migopt`), python3 with PyTorch
# (CUDA), torchvision and transformers, and nvidia-cuda-mps-control. About 6 minutes of GPU time.
# The H200 profiles it predicts with come from:
#   python3 profiles/measure.py --method mps --batches 1,2,4,8,16,32 --iters 50 \
#       --neighbour-load 0,0.3,0.6,1 --out-dir profiles/h200-141gb
set -eu
cd "$(dirname "$0")"
M=${MIGOPT:-migopt}
python3 make_traces.py traces
rm -rf raw.new && mkdir -p raw.new logs
$M serve plan.json --scenario scenario.toml --placement mps --start-mps \
  --trace traces/rate240.csv --trace traces/rate420.csv --trace traces/rate560.csv \
  --trace traces/rate640.csv --trace traces/rate700.csv --trace traces/rate760.csv \
  --scheduler elsa --scheduler fifs --out-dir raw.new --worker-logs logs 2>&1 | tee logs/serve.log
for f in raw.new/*.csv; do gzip -9f "$f"; done
mv raw.new/* raw/ && rmdir raw.new
cd ../.. && $M reproduce papers/sim-to-real
