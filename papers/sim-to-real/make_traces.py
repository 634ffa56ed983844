#!/usr/bin/env python3
"""The six Poisson traces of papers/sim-to-real (seeded; 24 s each; 60% ResNet-50, 40% BERT-base;
query batches 1-32 with the scenario's probabilities). Usage: python3 make_traces.py OUT_DIR"""
import os
import random
import sys

SIZES = [1, 2, 4, 8, 16, 32]
PROBS = [0.25, 0.2, 0.2, 0.15, 0.12, 0.08]
RATES = [240, 420, 560, 640, 700, 760]
DURATION_MS = 24000.0


def main(out):
    os.makedirs(out, exist_ok=True)
    for k, rate in enumerate(RATES):
        rng = random.Random(1000 + k)
        t, lines = 0.0, ["arrival_ms,model,batch"]
        while True:
            t += rng.expovariate(rate / 1000.0)
            if t > DURATION_MS:
                break
            m = "resnet50" if rng.random() < 0.6 else "bert-base"
            lines.append("%.4f,%s,%d" % (t, m, rng.choices(SIZES, PROBS)[0]))
        with open(os.path.join(out, "rate%d.csv" % rate), "w") as f:
            f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "traces")
