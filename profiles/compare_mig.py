#!/usr/bin/env python3
"""Compare the shape of the H100 green-context profiles with real A100-80GB MIG measurements.

Reads profiles/h100-80gb/<model>.csv (this repository) and the ParvaGPU A100-80GB MIG profiles in
profiles/parvagpu-a100-80gb/prof_data/ (vendored in the repository; --dataset overrides), and prints a
markdown table per model: latency(1g)/latency(7g) and latency(3g)/latency(7g) at a few batch sizes, for both.

Stdlib only. Prints a skip message (exit 0) when the shared dataset is absent.

ParvaGPU CSV: `Mig instance,Batch size,Workload Number,Throughput,Latency`; Mig instance = GPCs (1,2,3,4,7),
Workload Number = MPS processes (1 is used here), Latency in seconds rounded to 1 ms, rows 0,0 = not run.
Because the Latency column is rounded to milliseconds, latency is derived as batch / Throughput instead.
"""

import argparse
import csv
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
DEFAULT_DATASET = os.path.join(HERE, "parvagpu-a100-80gb")

# our model name -> ParvaGPU file
MODEL_FILES = {"resnet50": "resnet50.csv", "mobilenetv2": "mobilenetv2.csv", "bert-base": "bert.csv"}
# GPC count -> H100-80GB profile of the same GPC count
H100_PROFILE = {1: "1g.10gb", 3: "3g.40gb", 7: "7g.80gb"}
BATCHES = (1, 8, 32, 128)
# SMs per slice: A100 MIG (14 per GPC), H100 green contexts as measured (16 / 56 / 132)
SMS = {"A100": {1: 14, 3: 42, 7: 98}, "H100": {1: 16, 3: 56, 7: 132}}


def read_parva(path, procs=1):
    """{(gpcs, batch): latency_ms} from a ParvaGPU prof_data CSV (rows that were not run are left out)."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if int(r["Workload Number"]) != procs:
                continue
            thr = float(r["Throughput"])
            if thr <= 0:
                continue
            batch = int(r["Batch size"])
            out[(int(r["Mig instance"]), batch)] = batch * 1000.0 / thr
    return out


def read_ours(path):
    """{(gpcs, batch): latency_ms} from a migopt profile CSV (H100 profiles of 1, 3 and 7 GPCs)."""
    gpcs_of = {v: k for k, v in H100_PROFILE.items()}
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            g = gpcs_of.get(r["profile"])
            if g is not None and int(r["procs"]) == 1:
                out[(g, int(r["batch"]))] = float(r["latency_ms"])
    return out


def ratio(d, g, batch):
    a, b = d.get((g, batch)), d.get((7, batch))
    return None if a is None or b is None else a / b


def fmt(x):
    return "-" if x is None else "%.2f" % x


def table(model, parva, ours, batches=BATCHES):
    lines = [
        "%s: latency ratio to the full GPU (7g), same batch" % model,
        "",
        "| batch | A100 MIG 1g/7g | H100 green-ctx 1g/7g | A100 MIG 3g/7g | H100 green-ctx 3g/7g |",
        "|---:|---:|---:|---:|---:|",
    ]
    for b in batches:
        lines.append("| %d | %s | %s | %s | %s |" % (
            b, fmt(ratio(parva, 1, b)), fmt(ratio(ours, 1, b)), fmt(ratio(parva, 3, b)), fmt(ratio(ours, 3, b))))
    return lines


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--dataset", default=DEFAULT_DATASET,
                    help="the ParvaGPU A100-80GB data set (default: the copy vendored in profiles/)")
    ap.add_argument("--profiles-dir", default=os.path.join(HERE, "h100-80gb"))
    args = ap.parse_args(argv)
    parva_dir = os.path.join(args.dataset, "prof_data")
    if not os.path.isdir(parva_dir):
        print("compare_mig.py: error: no ParvaGPU A100 data at %s" % parva_dir, file=sys.stderr)
        return 2
    print("SMs per slice: A100 MIG 1g/3g/7g = %d/%d/%d (7g/1g = %.2f, 7g/3g = %.2f); "
          "H100 green contexts 1g/3g/7g = %d/%d/%d (7g/1g = %.2f, 7g/3g = %.2f)." % (
              SMS["A100"][1], SMS["A100"][3], SMS["A100"][7], SMS["A100"][7] / SMS["A100"][1],
              SMS["A100"][7] / SMS["A100"][3], SMS["H100"][1], SMS["H100"][3], SMS["H100"][7],
              SMS["H100"][7] / SMS["H100"][1], SMS["H100"][7] / SMS["H100"][3]))
    print("A100 latency = batch / throughput (ParvaGPU, 1 process); '-' = not in the data.")
    for model, fname in MODEL_FILES.items():
        ppath = os.path.join(parva_dir, fname)
        opath = os.path.join(args.profiles_dir, model + ".csv")
        if not (os.path.exists(ppath) and os.path.exists(opath)):
            print("\n%s: skipped (missing %s)" % (model, ppath if not os.path.exists(ppath) else opath))
            continue
        print()
        print("\n".join(table(model, read_parva(ppath), read_ours(opath))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
