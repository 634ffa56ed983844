#!/usr/bin/env python3
"""The Poisson traces of papers/sim-to-real (seeded; 60% ResNet-50, 40% BERT-base; query batches
1-32 with the scenario's probabilities).

    python3 make_traces.py calib OUT_DIR
        OUT_DIR/calib.csv: the calibration trace (its own seed; 420 queries/s for 15 s), from
        which the server's own cost per query is measured. It is never an evaluation run.
    python3 make_traces.py eval CAPACITY_CSV OUT_DIR
        OUT_DIR/<scheduler>/load<NN>.csv for every scheduler row of CAPACITY_CSV
        (results/capacity.csv, written by `migopt reproduce papers/sim-to-real` from the
        calibration runs): Poisson at exactly NN% of that scheduler's simulated capacity, 40 s.
"""
import csv
import os
import random
import sys

SIZES = [1, 2, 4, 8, 16, 32]
PROBS = [0.25, 0.2, 0.2, 0.15, 0.12, 0.08]
CALIB_RATE, CALIB_SEED = 420.0, 2000
# seconds per trace; DRY_RUN_SECONDS shortens both for a dry run of run.sh (PLACEMENT=fake)
CALIB_MS = 1000.0 * float(os.environ.get("DRY_RUN_SECONDS", 15))
EVAL_MS = 1000.0 * float(os.environ.get("DRY_RUN_SECONDS", 40))


def poisson(path, rate, duration_ms, seed):
    rng = random.Random(seed)
    t, lines = 0.0, ["arrival_ms,model,batch"]
    while True:
        t += rng.expovariate(rate / 1000.0)
        if t > duration_ms:
            break
        m = "resnet50" if rng.random() < 0.6 else "bert-base"
        lines.append("%.4f,%s,%d" % (t, m, rng.choices(SIZES, PROBS)[0]))
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    print("%s: %d queries at %.1f queries/s" % (path, len(lines) - 1, rate))


def main(argv):
    if len(argv) == 2 and argv[0] == "calib":
        poisson(os.path.join(argv[1], "calib.csv"), CALIB_RATE, CALIB_MS, CALIB_SEED)
        return 0
    if len(argv) == 3 and argv[0] == "eval":
        with open(argv[1]) as f:
            rows = list(csv.DictReader(f))
        if not rows:
            sys.exit("make_traces.py: %s has no scheduler rows" % argv[1])
        for row in rows:
            for key, val in row.items():
                if key.startswith("rate_load") and key.endswith("_qps"):
                    load = int(key[len("rate_load"):-len("_qps")])
                    path = os.path.join(argv[2], row["scheduler"], "load%d.csv" % load)
                    poisson(path, float(val), EVAL_MS, 3000 + load)
        return 0
    sys.exit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
