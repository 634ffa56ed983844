#!/usr/bin/env python3
"""Measure inference latency profiles of ML models on MIG partitions (or their emulation).

Writes migopt's profile CSV (one file per model) and a JSON sidecar with the provenance.

Two ways to get a partition:

* ``--method green-context`` (default on a GPU that is not in MIG mode): every MIG profile of the GPU is
  emulated by a CUDA green context holding about the profile's number of SMs, plus a cap on the PyTorch
  allocator at the profile's memory size. Only the SMs are partitioned: memory bandwidth, L2 and copy
  engines are shared with the whole GPU, so small slices look faster than real MIG slices (see README.md).
* ``--method mig --mig-devices MIG-UUID,...`` (on a GPU in MIG mode): one process per real MIG device.

Every (profile) runs in its own child process (a green context cannot be re-created in a process after it
was popped, and a MIG device is chosen with CUDA_VISIBLE_DEVICES before CUDA starts). Inside it, every
(model, batch) is captured into a CUDA graph and its replays are timed one by one with CUDA events.

One command profiles the GPU it runs on (all models, all profiles):

    python3 profiles/measure.py --out-dir myprofiles/

torch is imported lazily, so this module (its tables, argument parsing and CSV writing) imports without it.
"""

import argparse
import csv
import datetime
import json
import os
import re
import subprocess
import sys
import tempfile
import time

SCRIPT_VERSION = 1

MODELS = ("resnet50", "mobilenetv2", "bert-base", "vit-b16")
CNN_MODELS = ("resnet50", "mobilenetv2")
DEFAULT_BATCHES = (1, 2, 4, 8, 16, 32, 64, 128, 256)
CSV_HEADER = (
    "model",
    "gpu",
    "profile",
    "batch",
    "latency_ms",
    "latency_p99_ms",
    "procs",
    "throughput_qps",
    "method",
)
METHODS = ("green-context", "mig", "mps")
# The MPS method adds one column: how busy each neighbouring partition was while the row was measured.
CSV_HEADER_MPS = CSV_HEADER + ("neighbour_load",)
# Layouts whose partitions are measured together under neighbour load (MPS method), per GPU: between
# them they hold every profile that can have a neighbour (7g is the whole GPU). Valid NVML placements.
DEFAULT_LOAD_LAYOUTS = {
    "H200-141GB": [["3g.71gb", "2g.35gb", "1g.18gb", "1g.18gb"], ["4g.71gb", "1g.35gb", "1g.35gb"]],
    "H100-80GB": [["3g.40gb", "2g.20gb", "1g.10gb", "1g.10gb"], ["4g.40gb", "1g.20gb", "1g.20gb"]],
}
DTYPES = ("fp16", "bf16", "fp32")

# MIG profile tables: (profile, SMs of the MIG slice, SMs asked of a green context, memory GiB of the slice).
# H100/H200 read with `nvidia-smi mig -lgip` (see shared notes). Green contexts on Hopper are granted in
# multiples of 8 SMs, rounded up: 26 and 60 cannot be had, so 1g.20gb asks 24 and 3g.40gb asks 56 (the
# conservative side). A100/A30 values are NVIDIA's documented MIG tables (not measured here); Ampere green
# contexts split in multiples of 2 SMs, so the MIG counts are asked as they are.
PROFILE_TABLES = {
    "H100-80GB": [
        ("1g.10gb", 16, 16, 9.75),
        ("1g.20gb", 26, 24, 19.62),
        ("2g.20gb", 32, 32, 19.62),
        ("3g.40gb", 60, 56, 39.50),
        ("4g.40gb", 64, 64, 39.50),
        ("7g.80gb", 132, 132, 79.25),
    ],
    "H200-141GB": [
        ("1g.18gb", 16, 16, 16.00),
        ("1g.35gb", 26, 24, 32.50),
        ("2g.35gb", 32, 32, 32.50),
        ("3g.71gb", 60, 56, 69.75),
        ("4g.71gb", 64, 64, 69.75),
        ("7g.141gb", 132, 132, 140.00),
    ],
    "A100-80GB": [
        ("1g.10gb", 14, 14, 9.50),
        ("1g.20gb", 14, 14, 19.50),
        ("2g.20gb", 28, 28, 19.50),
        ("3g.40gb", 42, 42, 39.25),
        ("4g.40gb", 56, 56, 39.25),
        ("7g.80gb", 98, 98, 79.00),
    ],
    "A100-40GB": [
        ("1g.5gb", 14, 14, 4.75),
        ("1g.10gb", 14, 14, 9.75),
        ("2g.10gb", 28, 28, 9.75),
        ("3g.20gb", 42, 42, 19.50),
        ("4g.20gb", 56, 56, 19.50),
        ("7g.40gb", 98, 98, 39.50),
    ],
    "A30-24GB": [
        ("1g.6gb", 14, 14, 5.75),
        ("2g.12gb", 28, 28, 11.75),
        ("4g.24gb", 56, 56, 23.50),
    ],
}

METHOD_LIMITS = {
    "green-context": (
        "Green contexts partition only the SMs. Memory bandwidth, the L2 cache and the copy engines stay "
        "shared with the whole GPU (a real MIG slice gets its own fraction of each), so small emulated "
        "slices run faster than real MIG slices, most for memory-bound work. SMs are granted in multiples "
        "of 8 on Hopper: 1g.20gb (26 SMs under MIG) is measured with 24, 3g.40gb (60 SMs) with 56. "
        "Memory is capped only through PyTorch's allocator (set_per_process_memory_fraction); the CUDA "
        "context and library workspaces outside it are not counted, so the out-of-memory edge is approximate. "
        "Each profile was measured alone on an otherwise idle GPU (no neighbours), with one process."
    ),
    "mig": (
        "Measured on real MIG devices, one process per device. Neighbouring MIG instances were idle, "
        "so interference between instances (none for SMs/L2/bandwidth under MIG, but shared power and "
        "clocks) is not captured."
    ),
    "mps": (
        "Each partition is one MPS client process limited to the slice's share of the SMs "
        "(CUDA_MPS_ACTIVE_THREAD_PERCENTAGE = round(100 * MIG SMs / GPU SMs)); the SMs it actually used are "
        "counted. As with green contexts, memory bandwidth, the L2 cache and the copy engines stay shared with "
        "the whole GPU, so an isolated slice is faster than a real MIG slice; unlike green contexts, MPS clients "
        "run side by side, which is how `migopt serve` co-locates partitions on a GPU not in MIG mode. Rows with "
        "neighbour_load 0 were measured with the partition alone on the GPU; rows with neighbour_load d were "
        "measured with every partition of the layout named in the sidecar running at the same time, each busy a "
        "fraction d of the time (random idle gaps), so they include the slowdown from shared L2 and HBM bandwidth. "
        "Latency is timed on the host around graph replay + stream synchronisation, as the server's worker runs a query. "
        "Memory is capped only through PyTorch's allocator."
    ),
}


# --------------------------------------------------------------------------------------------- tables


def map_gpu_name(device_name):
    """Map a CUDA device name (torch.cuda.get_device_name / nvidia-smi) to migopt's GPU id, or None."""
    name = re.sub(r"\s+MIG\s+\S+.*$", "", device_name.strip())  # "... MIG 1g.10gb" -> base name
    up = name.upper()
    if "H200" in up:
        return "H200-141GB"
    if "H100" in up:
        if "NVL" in up or "94GB" in up:
            return None
        return "H100-80GB"
    if "A100" in up:
        if "80GB" in up.replace(" ", "").replace("-", ""):
            return "A100-80GB"
        if "40GB" in up.replace(" ", "").replace("-", "") or re.search(r"A100[- ]?(SXM4|PCIE)?$", up):
            return "A100-40GB"
        return None
    if re.search(r"\bA30\b", up):
        return "A30-24GB"
    return None


def profile_from_device_name(device_name):
    """'NVIDIA H100 80GB HBM3 MIG 1g.10gb' -> '1g.10gb' (None when there is no MIG profile in it)."""
    m = re.search(r"(\d+g\.\d+gb)", device_name)
    return m.group(1) if m else None


def profile_table(gpu):
    if gpu not in PROFILE_TABLES:
        raise KeyError("no MIG profile table for GPU %r (known: %s)" % (gpu, ", ".join(PROFILE_TABLES)))
    return [
        {"profile": p, "mig_sms": mig, "sms_requested": req, "memory_gib": gib}
        for (p, mig, req, gib) in PROFILE_TABLES[gpu]
    ]


def round_up_sms(num_sms, granularity=8):
    """What a Hopper green context grants for a request (multiples of 8, rounded up)."""
    return ((num_sms + granularity - 1) // granularity) * granularity


# ------------------------------------------------------------------------------------------ arguments


def _csv_list(text):
    return [x.strip() for x in text.split(",") if x.strip()]


def _int_list(text):
    try:
        vals = [int(x) for x in _csv_list(text)]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, got %r" % text)
    if not vals or any(v < 1 for v in vals):
        raise argparse.ArgumentTypeError("batch sizes must be positive integers")
    return sorted(set(vals))


def _model_list(text):
    vals = _csv_list(text)
    if vals == ["all"]:
        return list(MODELS)
    bad = [v for v in vals if v not in MODELS]
    if bad or not vals:
        raise argparse.ArgumentTypeError("unknown model(s) %s; choose from %s" % (bad, ", ".join(MODELS)))
    return vals


def _load_list(text):
    try:
        vals = sorted({round(float(x), 4) for x in _csv_list(text)})
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated fractions, got %r" % text)
    if not vals or any(not (0.0 <= v <= 1.0) for v in vals):
        raise argparse.ArgumentTypeError("neighbour loads are fractions between 0 and 1")
    return vals


def _layout_list(text):
    out = [_csv_list(x) for x in text.split(";") if x.strip()]
    if not out or any(len(l) < 2 for l in out):
        raise argparse.ArgumentTypeError("each layout needs at least two profiles, e.g. 3g.71gb,2g.35gb;4g.71gb,1g.35gb")
    return out


def build_parser():
    p = argparse.ArgumentParser(
        prog="measure.py",
        description="Measure per-(model, MIG profile, batch) inference latency and write migopt profile CSVs.",
    )
    p.add_argument("--out-dir", default="myprofiles", help="where <model>.csv and <model>.json go")
    p.add_argument("--models", type=_model_list, default=list(MODELS),
                   help="comma-separated subset of: %s (default: all)" % ", ".join(MODELS))
    p.add_argument("--batches", type=_int_list, default=list(DEFAULT_BATCHES),
                   help="comma-separated batch sizes (default: 1,2,4,...,256)")
    p.add_argument("--method", choices=METHODS, default=None,
                   help="green-context (SM-only emulation; the default on a GPU not in MIG mode), "
                        "mig (real MIG devices; the default in MIG mode or with --mig-devices) or "
                        "mps (MPS clients limited to each slice's SMs; --neighbour-load)")
    p.add_argument("--mig-devices", type=_csv_list, default=None,
                   help="MIG device UUIDs (method mig); default: all MIG devices `nvidia-smi -L` lists")
    p.add_argument("--mig-profiles", type=_csv_list, default=None,
                   help="profile names of --mig-devices, same order (default: read from the device name)")
    p.add_argument("--profiles", type=_csv_list, default=None,
                   help="subset of the GPU's MIG profiles to emulate (method green-context; default: all)")
    p.add_argument("--gpu", default=None, help="GPU id for the CSV, e.g. H100-80GB (default: detected)")
    p.add_argument("--dtype", choices=DTYPES, default="fp16")
    p.add_argument("--seq-len", type=int, default=128, help="sequence length for bert-base (default 128)")
    p.add_argument("--image-size", type=int, default=224, help="image side for CNNs and ViT (default 224)")
    p.add_argument("--warmup", type=int, default=10, help="graph replays before timing (>=10)")
    p.add_argument("--iters", type=int, default=100, help="timed graph replays per point (>=50)")
    p.add_argument("--max-point-seconds", type=float, default=4.0,
                   help="fewer timed replays (never below 50) where iters*latency would exceed this")
    p.add_argument("--no-memory-cap", action="store_true",
                   help="green-context: do not cap the allocator at the profile's memory size")
    p.add_argument("--no-cudnn-benchmark", action="store_true", help="leave cudnn.benchmark off")
    p.add_argument("--worker-timeout", type=float, default=1800.0, help="seconds per profile process")
    p.add_argument("--neighbour-load", type=_load_list, default=[0.0],
                   help="method mps: neighbour duties to measure under, e.g. 0,0.3,0.6,1 (0 = each profile alone)")
    p.add_argument("--layouts", type=_layout_list, default=None,
                   help="method mps: layouts measured together under load, ';'-separated, each a ','-list of "
                        "profiles (default: two layouts holding every profile of the GPU)")
    p.add_argument("--mps-pipe-dir", default=None,
                   help="method mps: use the MPS daemon of this CUDA_MPS_PIPE_DIRECTORY instead of starting one")
    p.add_argument("--plot", action="store_true",
                   help="only draw <model>.svg from the CSVs already in --out-dir (needs matplotlib)")
    p.add_argument("--no-plot", action="store_true", help="do not draw SVGs after measuring")
    p.add_argument("--quiet", action="store_true")
    # hidden: the child process that measures one partition
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--worker-info", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--result-file", default=None, help=argparse.SUPPRESS)
    p.add_argument("--profile", default=None, help=argparse.SUPPRESS)
    p.add_argument("--sms", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--memory-gib", type=float, default=0.0, help=argparse.SUPPRESS)
    p.add_argument("--mps-child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--sync-dir", default=None, help=argparse.SUPPRESS)
    p.add_argument("--duties", type=_load_list, default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--member", type=int, default=0, help=argparse.SUPPRESS)
    p.add_argument("--skip-isolated", action="store_true", help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.warmup < 10 and not args.worker:
        parser.error("--warmup must be at least 10")
    if args.iters < 50 and not args.worker:
        parser.error("--iters must be at least 50")
    if args.seq_len < 1 or args.image_size < 32:
        parser.error("--seq-len must be >= 1 and --image-size >= 32")
    if args.mig_profiles and args.mig_devices and len(args.mig_profiles) != len(args.mig_devices):
        parser.error("--mig-profiles needs one name per --mig-devices entry")
    if args.mig_devices and args.method is None:
        args.method = "mig"
    if args.mig_devices and args.method != "mig":
        parser.error("--mig-devices only goes with --method mig")
    if (args.neighbour_load != [0.0] or args.layouts or args.mps_pipe_dir) and args.method != "mps" and not args.worker:
        parser.error("--neighbour-load, --layouts and --mps-pipe-dir go with --method mps")
    return args


# ------------------------------------------------------------------------------------- CSV & sidecar


def percentile(sorted_vals, q):
    """Nearest-rank percentile of an ascending list (q in 0..100)."""
    if not sorted_vals:
        raise ValueError("no values")
    k = max(1, -(-len(sorted_vals) * q // 100))  # ceil(n*q/100), at least 1
    return sorted_vals[int(min(k, len(sorted_vals))) - 1]


def median(sorted_vals):
    n = len(sorted_vals)
    if n == 0:
        raise ValueError("no values")
    mid = n // 2
    return sorted_vals[mid] if n % 2 else 0.5 * (sorted_vals[mid - 1] + sorted_vals[mid])


def make_row(model, gpu, profile, batch, latency_ms, latency_p99_ms, method, procs=1):
    if not (latency_ms > 0 and latency_p99_ms > 0):
        raise ValueError("latency must be positive (got %r, %r)" % (latency_ms, latency_p99_ms))
    return {
        "model": model,
        "gpu": gpu,
        "profile": profile,
        "batch": int(batch),
        "latency_ms": round(float(latency_ms), 4),
        "latency_p99_ms": round(float(latency_p99_ms), 4),
        "procs": int(procs),
        "throughput_qps": round(procs * batch * 1000.0 / latency_ms, 3),
        "method": method,
    }


def rows_from_points(points, gpu, method, profile_order=None):
    """Turn worker results into CSV rows. Points that ran out of memory (or failed) give no row."""
    order = {p: i for i, p in enumerate(profile_order or [])}
    rows = []
    for pt in points:
        if pt.get("status") != "ok":
            continue
        row = make_row(pt["model"], gpu, pt["profile"], pt["batch"], pt["p50_ms"], pt["p99_ms"], method)
        if "neighbour_load" in pt:
            row["neighbour_load"] = float(pt["neighbour_load"])
        rows.append(row)
    rows.sort(key=lambda r: (r.get("neighbour_load", 0.0), order.get(r["profile"], len(order)), r["profile"],
                             r["batch"]))
    return rows


def write_csv(path, rows):
    tmp = path + ".tmp"
    loaded = any("neighbour_load" in r for r in rows)
    with open(tmp, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(CSV_HEADER_MPS if loaded else CSV_HEADER)
        for r in rows:
            w.writerow([
                r["model"], r["gpu"], r["profile"], r["batch"],
                "%.4f" % r["latency_ms"], "%.4f" % r["latency_p99_ms"], r["procs"],
                "%.3f" % r["throughput_qps"], r["method"],
            ] + (["%g" % r.get("neighbour_load", 0.0)] if loaded else []))
    os.replace(tmp, path)


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def build_sidecar(model, gpu, method, env, settings, profiles, points):
    """The provenance JSON for one model's CSV."""
    mine = [p for p in points if p.get("model") == model]
    per_profile = []
    for prof in profiles:
        pts = [p for p in mine if p.get("profile") == prof["profile"]]
        ok = sorted(p["batch"] for p in pts if p.get("status") == "ok")
        oom = sorted(p["batch"] for p in pts if p.get("status") == "oom")
        err = [{"batch": p["batch"], "error": p.get("error", "")} for p in pts if p.get("status") == "error"]
        entry = dict(prof)
        entry.update({
            "batches_measured": ok,
            "first_oom_batch": oom[0] if oom else None,
            "batches_skipped_after_oom": sorted(p["batch"] for p in pts if p.get("status") == "skipped"),
            "errors": err,
            "timed_replays": {str(p["batch"]): p.get("n") for p in pts if p.get("status") == "ok"},
        })
        per_profile.append(entry)
    model_info = next((p.get("model_info") for p in mine if p.get("model_info")), None)
    return {
        "schema": "migopt-profile-sidecar/1",
        "model": model,
        "model_info": model_info,
        "gpu": gpu,
        "method": method,
        "date_utc": env.get("date_utc"),
        "environment": {k: v for k, v in env.items() if k != "date_utc"},
        "settings": settings,
        "profiles": per_profile,
        "limits": METHOD_LIMITS[method],
        "csv_columns": {
            "latency_ms": "median of the timed CUDA-graph replays of one batch, milliseconds",
            "latency_p99_ms": "99th percentile (nearest rank) of the same replays",
            "procs": "processes sharing the instance (always 1 here)",
            "throughput_qps": "procs * batch * 1000 / latency_ms, queries per second",
        },
        "generator": "profiles/measure.py v%d" % SCRIPT_VERSION,
    }


def write_json(path, obj):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=2, sort_keys=False)
        f.write("\n")
    os.replace(tmp, path)


# ------------------------------------------------------------------------------------- plotting


def plot_csv(csv_path, svg_path):
    """latency vs batch, one line per profile, log-log. Returns False when matplotlib is missing."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = read_csv(csv_path)
    if not rows:
        return False
    profiles = []
    for r in rows:
        if r["profile"] not in profiles:
            profiles.append(r["profile"])
    matplotlib.rcParams["svg.hashsalt"] = "migopt"
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for prof in profiles:
        pts = sorted((int(r["batch"]), float(r["latency_ms"])) for r in rows if r["profile"] == prof)
        ax.plot([b for b, _ in pts], [l for _, l in pts], marker="o", markersize=3, label=prof)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("median latency per batch (ms)")
    r0 = rows[0]
    ax.set_title("%s on %s (%s)" % (r0["model"], r0["gpu"], r0["method"]))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(title="profile", fontsize=8)
    fig.tight_layout()
    fig.savefig(svg_path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return True


# ------------------------------------------------------------------------------------- parent side


def log(args, msg):
    if not getattr(args, "quiet", False):
        print("[measure] " + msg, file=sys.stderr, flush=True)


def _worker_cmd(args, extra):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker",
           "--models", ",".join(args.models),
           "--batches", ",".join(str(b) for b in args.batches),
           "--dtype", args.dtype, "--seq-len", str(args.seq_len), "--image-size", str(args.image_size),
           "--warmup", str(args.warmup), "--iters", str(args.iters),
           "--max-point-seconds", str(args.max_point_seconds)]
    if args.no_cudnn_benchmark:
        cmd.append("--no-cudnn-benchmark")
    return cmd + extra


def read_jsonl(path):
    out = []
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for line in f:
            line = line.strip()
            if line:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    pass  # a line cut short by a killed worker
    return out


def run_worker(args, extra, env=None, models=None):
    """Run one child process; return the records it wrote (also when it died)."""
    fd, path = tempfile.mkstemp(prefix="migopt-measure-", suffix=".jsonl")
    os.close(fd)
    saved = args.models
    if models is not None:
        args.models = models
    cmd = _worker_cmd(args, extra + ["--result-file", path])
    args.models = saved
    child_env = dict(os.environ)
    child_env.setdefault("PYTHONUNBUFFERED", "1")
    if env:
        child_env.update(env)
    try:
        proc = subprocess.run(cmd, env=child_env, timeout=args.worker_timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        rc = "timeout"
    recs = read_jsonl(path)
    os.unlink(path)
    if rc != 0:
        recs.append({"type": "exit", "rc": rc})
    return recs


def nvidia_smi(query):
    try:
        out = subprocess.run(["nvidia-smi"] + query, capture_output=True, text=True, timeout=30)
        return out.stdout if out.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        return None


def list_mig_devices():
    """[(uuid, profile)] of the MIG devices `nvidia-smi -L` lists (read-only)."""
    text = nvidia_smi(["-L"]) or ""
    return [(m.group(2), m.group(1)) for m in
            re.finditer(r"MIG\s+(\d+g\.\d+gb)\s+Device\s+\d+:\s+\(UUID:\s+(MIG-[^)\s]+)\)", text)]


def environment_info(info):
    env = {k: v for k, v in info.items() if k != "type"}
    env["date_utc"] = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    drv = nvidia_smi(["--query-gpu=driver_version", "--format=csv,noheader"])
    env["driver"] = drv.strip().splitlines()[0] if drv else None
    env["python"] = sys.version.split()[0]
    return env


def measure(args):
    os.makedirs(args.out_dir, exist_ok=True)
    info_recs = run_worker(args, ["--worker-info"], env=(
        {"CUDA_VISIBLE_DEVICES": args.mig_devices[0]} if args.mig_devices else None))
    info = next((r for r in info_recs if r.get("type") == "info"), None)
    if info is None:
        sys.exit("measure.py: could not start a CUDA worker (is PyTorch with CUDA installed and a GPU visible?): %r"
                 % info_recs)
    method = args.method
    if method is None:
        method = "mig" if info.get("is_mig") else "green-context"
    gpu = args.gpu or map_gpu_name(info["device_name"])
    if gpu is None:
        sys.exit("measure.py: unknown GPU %r; pass --gpu (one of %s)" % (info["device_name"], ", ".join(PROFILE_TABLES)))
    env = environment_info(info)
    log(args, "GPU %s (%s), method %s, models %s" % (gpu, info["device_name"], method, ",".join(args.models)))
    if method == "mps":
        import measure_mps
        return measure_mps.measure(args, gpu, info, env)

    # the partitions to visit: (profile dict, extra worker args, extra env)
    jobs = []
    if method == "green-context":
        if info.get("is_mig"):
            sys.exit("measure.py: this GPU is in MIG mode; use --method mig")
        table = profile_table(gpu)
        if args.profiles:
            known = [p["profile"] for p in table]
            bad = [p for p in args.profiles if p not in known]
            if bad:
                sys.exit("measure.py: unknown profile(s) %s for %s (known: %s)" % (bad, gpu, ", ".join(known)))
            table = [p for p in table if p["profile"] in args.profiles]
        total_gib = info["total_memory_bytes"] / 2.0 ** 30
        for prof in table:
            frac = None if args.no_memory_cap else min(1.0, prof["memory_gib"] / total_gib)
            prof = dict(prof, memory_fraction=(round(frac, 4) if frac is not None else None))
            extra = ["--profile", prof["profile"], "--sms", str(prof["sms_requested"])]
            if frac is not None:
                extra += ["--memory-gib", str(prof["memory_gib"])]
            jobs.append((prof, extra, None))
    else:
        devs = args.mig_devices
        names = args.mig_profiles
        if not devs:
            found = list_mig_devices()
            if not found:
                sys.exit("measure.py: --method mig but no MIG devices found; pass --mig-devices")
            devs = [u for u, _ in found]
            names = names or [p for _, p in found]
        tables = {p["profile"]: p for p in profile_table(gpu)} if gpu in PROFILE_TABLES else {}
        for i, uuid in enumerate(devs):
            name = names[i] if names else None
            prof = dict(tables.get(name, {"profile": name}), mig_device=uuid)
            extra = ["--profile", name or ""]
            jobs.append((prof, extra, {"CUDA_VISIBLE_DEVICES": uuid}))

    settings = {
        "dtype": args.dtype,
        "batches": args.batches,
        "warmup_replays": args.warmup,
        "timed_replays": args.iters,
        "min_timed_replays": 50,
        "max_point_seconds": args.max_point_seconds,
        "seq_len_bert": args.seq_len,
        "image_size": args.image_size,
        "inference_mode": True,
        "cuda_graphs": "one graph captured per (model, batch); replays timed one by one with CUDA events",
        "channels_last_cnns": True,
        "cudnn_benchmark": not args.no_cudnn_benchmark,
        "weights": "random (no download): torchvision weights=None, transformers BertConfig() defaults",
        "memory_cap": (None if method == "mig" else
                       ("off" if args.no_memory_cap else "torch.cuda.set_per_process_memory_fraction(profile GiB / total GiB)")),
        "processes": "one child process per partition; partitions measured one after another on an idle GPU",
        "latency": "p50 = median, p99 = nearest-rank 99th percentile of the timed replays",
    }

    points = []
    profiles_done = []
    for prof, extra, wenv in jobs:
        t0 = time.time()
        remaining = list(args.models)
        got = []
        for attempt in range(2):  # one retry for the models a crashed worker did not finish
            recs = run_worker(args, extra, env=wenv, models=remaining)
            winfo = next((r for r in recs if r.get("type") == "info"), {})
            if winfo:
                prof["sms_granted"] = winfo.get("sms_granted")
                prof["sms_granted_how"] = winfo.get("sms_granted_how")
                if method == "mig":
                    prof["profile"] = prof.get("profile") or profile_from_device_name(winfo.get("device_name", ""))
                    prof["sms_granted"] = winfo.get("multi_processor_count")
                    prof["memory_gib"] = round(winfo.get("total_memory_bytes", 0) / 2.0 ** 30, 2)
            pts = [r for r in recs if r.get("type") == "point"]
            for p in pts:
                p["profile"] = prof["profile"]
            got += pts
            finished = {r["model"] for r in recs if r.get("type") == "model_done"}
            remaining = [m for m in remaining if m not in finished]
            crashed = [r for r in recs if r.get("type") == "exit"]
            if not remaining:
                break
            log(args, "profile %s: worker ended early (%s); retrying models %s"
                % (prof["profile"], crashed or "no exit record", remaining))
            # drop partial points of unfinished models, they are measured again
            got = [p for p in got if p["model"] not in remaining]
        if remaining:
            prof["unfinished_models"] = remaining
        points += got
        profiles_done.append(prof)
        log(args, "profile %s done in %.0f s (%d points, SMs granted %s)"
            % (prof["profile"], time.time() - t0, sum(p["status"] == "ok" for p in got), prof.get("sms_granted")))
        write_outputs(args, gpu, method, env, settings, profiles_done, points)
    if not args.no_plot:
        for model in args.models:
            csv_path = os.path.join(args.out_dir, model + ".csv")
            if os.path.exists(csv_path) and not plot_csv(csv_path, os.path.join(args.out_dir, model + ".svg")):
                log(args, "matplotlib not available: no SVG drawn")
                break
    return points


def write_outputs(args, gpu, method, env, settings, profiles, points):
    order = [p["profile"] for p in profiles]
    for model in args.models:
        mine = [p for p in points if p["model"] == model]
        rows = rows_from_points(mine, gpu, method, order)
        write_csv(os.path.join(args.out_dir, model + ".csv"), rows)
        write_json(os.path.join(args.out_dir, model + ".json"),
                   build_sidecar(model, gpu, method, env, settings, profiles, points))


# ------------------------------------------------------------------------------------- worker side


class _Out:
    def __init__(self, path):
        self.f = open(path, "a") if path else sys.stdout

    def put(self, **rec):
        self.f.write(json.dumps(rec) + "\n")
        self.f.flush()


def _torch_dtype(torch, name):
    return {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[name]


def start_cuda(torch, cudnn_benchmark):
    """Starts CUDA on device 0 (the primary context first) and returns the device's properties."""
    torch.backends.cudnn.benchmark = cudnn_benchmark
    torch.cuda.init()
    torch.zeros(1, device="cuda")  # primary context first
    return torch.cuda.get_device_properties(0)


def cap_memory(torch, props, memory_gib):
    """Caps PyTorch's allocator at `memory_gib` GiB of the device; returns the fraction it was capped at."""
    frac = min(1.0, memory_gib * 2.0 ** 30 / props.total_memory)
    torch.cuda.set_per_process_memory_fraction(frac, 0)
    return frac


def granted_sms(torch, fallback):
    """The info fields sms_granted and sms_granted_how: the SMs counted, or `fallback` and why they were not."""
    try:
        return {"sms_granted": count_sms_in_use(torch),
                "sms_granted_how": "distinct %smid values over 20000 blocks of one Triton kernel"}
    except Exception as e:  # Triton missing or failing: fall back to what is known
        return {"sms_granted": fallback, "sms_granted_how": "not counted (%s: %s)" % (type(e).__name__, str(e)[:200])}


def capture_graph(torch, model, inputs, stream):
    """Runs `model` eagerly on `stream` (cudnn autotuning, lazy inits), then captures one call into a CUDA graph
    on it. Returns (graph, output): the caller keeps `inputs` and the output alive as long as the graph."""
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model(*inputs)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g, stream=stream):
        out = model(*inputs)
    torch.cuda.synchronize()
    return g, out


def count_sms_in_use(torch, blocks=20000):
    """Count the distinct SMs that the blocks of one kernel ran on (reads %smid through Triton)."""
    import triton
    import triton.language as tl

    @triton.jit
    def _smid_kernel(in_ptr, out_ptr, BLOCK: tl.constexpr):
        pid = tl.program_id(0)
        offs = tl.arange(0, BLOCK)
        x = tl.load(in_ptr + offs)
        sm = tl.inline_asm_elementwise("mov.u32 $0, %smid;", "=r,r", [x], dtype=tl.int32, is_pure=False, pack=1)
        tl.store(out_ptr + pid * BLOCK + offs, sm)

    block = 32
    inp = torch.zeros(block, dtype=torch.int32, device="cuda")
    out = torch.full((blocks * block,), -1, dtype=torch.int32, device="cuda")
    counts = []
    for _ in range(3):
        _smid_kernel[(blocks,)](inp, out, BLOCK=block)
        torch.cuda.synchronize()
        assert int(out.min()) >= 0, "smid kernel left outputs unwritten"
        counts.append(int(torch.unique(out).numel()))
    return max(counts)


def build_model(torch, name, dtype, image_size, seq_len):
    """(model, make_inputs(batch) -> tuple of tensors, info)."""
    dev = "cuda"
    if name in ("resnet50", "mobilenetv2", "vit-b16"):
        import torchvision
        if name == "resnet50":
            m = torchvision.models.resnet50(weights=None)
        elif name == "mobilenetv2":
            m = torchvision.models.mobilenet_v2(weights=None)
        else:
            m = torchvision.models.vit_b_16(weights=None, image_size=image_size)
        m = m.eval().to(dev, dtype=dtype)
        cl = name in CNN_MODELS
        if cl:
            m = m.to(memory_format=torch.channels_last)

        def make_inputs(b):
            x = torch.randn(b, 3, image_size, image_size, device=dev, dtype=dtype)
            if cl:
                x = x.contiguous(memory_format=torch.channels_last)
            return (x,)
        info = {"source": "torchvision %s %s(weights=None)" % (torchvision.__version__, m.__class__.__name__),
                "input": "batch x 3 x %d x %d random normal" % (image_size, image_size), "channels_last": cl}
    elif name == "bert-base":
        import transformers
        cfg = transformers.BertConfig()  # defaults are bert-base-uncased's shape
        m = transformers.BertModel(cfg).eval().to(dev, dtype=dtype)

        def make_inputs(b):
            ids = torch.randint(0, cfg.vocab_size, (b, seq_len), device=dev)
            return (ids,)
        info = {"source": "transformers %s BertModel(BertConfig())" % transformers.__version__,
                "input": "batch x %d random token ids, no attention mask" % seq_len,
                "attn_implementation": getattr(m.config, "_attn_implementation", None)}
    else:
        raise ValueError(name)
    info["parameters"] = sum(p.numel() for p in m.parameters())
    return m, make_inputs, info


def time_point(torch, model, inputs, warmup, iters, max_seconds):
    """Capture one CUDA graph for these inputs, replay, time replays one by one. Returns sorted ms list."""
    s = torch.cuda.Stream()
    s.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(s):
        for _ in range(3):  # eager warm-up: cudnn autotuning, lazy inits, allocations
            model(*inputs)
    torch.cuda.current_stream().wait_stream(s)
    torch.cuda.synchronize()
    g = torch.cuda.CUDAGraph()
    with torch.cuda.graph(g):
        out = model(*inputs)
    torch.cuda.synchronize()
    for _ in range(warmup):
        g.replay()
    torch.cuda.synchronize()
    # estimate, to keep each point under max_seconds (never fewer than 50 timed replays)
    e0, e1 = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    e0.record()
    for _ in range(3):
        g.replay()
    e1.record()
    torch.cuda.synchronize()
    est = e0.elapsed_time(e1) / 3.0
    n = iters
    if est * iters > max_seconds * 1000.0:
        n = max(50, int(max_seconds * 1000.0 / max(est, 1e-6)))
    starts = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    ends = [torch.cuda.Event(enable_timing=True) for _ in range(n)]
    for i in range(n):
        starts[i].record()
        g.replay()
        ends[i].record()
    torch.cuda.synchronize()
    times = sorted(a.elapsed_time(b) for a, b in zip(starts, ends))
    del out, g
    return times


def _is_oom(torch, exc):
    oom_types = tuple(t for t in (getattr(torch, "OutOfMemoryError", None),
                                  getattr(torch.cuda, "OutOfMemoryError", None)) if t is not None)
    if oom_types and isinstance(exc, oom_types):
        return True
    msg = str(exc).lower()
    return "out of memory" in msg or "cudnn_status_alloc_failed" in msg or "cublas_status_alloc_failed" in msg


def worker_info(args):
    out = _Out(args.result_file)
    import torch
    props = torch.cuda.get_device_properties(0)
    name = torch.cuda.get_device_name(0)
    out.put(type="info", device_name=name, is_mig="MIG" in name.split(),
            total_memory_bytes=props.total_memory, multi_processor_count=props.multi_processor_count,
            capability="%d.%d" % (props.major, props.minor), torch=torch.__version__, cuda=torch.version.cuda,
            cudnn=torch.backends.cudnn.version(), torchvision=_version("torchvision"),
            transformers=_version("transformers"), triton=_version("triton"))


def _version(mod):
    try:
        return __import__(mod).__version__
    except Exception:
        return None


def worker(args):
    out = _Out(args.result_file)
    import gc
    import torch
    dtype = _torch_dtype(torch, args.dtype)
    props = start_cuda(torch, not args.no_cudnn_benchmark)
    name = torch.cuda.get_device_name(0)
    gc_ctx = None
    info = {"type": "info", "device_name": name, "multi_processor_count": props.multi_processor_count,
            "total_memory_bytes": props.total_memory, "profile": args.profile}
    if args.sms:
        from torch.cuda.green_contexts import GreenContext
        gc_ctx = GreenContext.create(args.sms, 0)
        gc_ctx.set_context()
        info["sms_requested"] = args.sms
    if args.memory_gib:
        info["memory_fraction"] = cap_memory(torch, props, args.memory_gib)
    info.update(granted_sms(torch, None if args.sms else props.multi_processor_count))
    out.put(**info)
    print("[worker %s] SMs requested %s, granted %s" % (args.profile, args.sms or "-", info["sms_granted"]),
          file=sys.stderr, flush=True)

    with torch.inference_mode():
        for mname in args.models:
            t0 = time.time()
            model, make_inputs, minfo = build_model(torch, mname, dtype, args.image_size, args.seq_len)
            stop = False
            for b in args.batches:
                rec = {"type": "point", "model": mname, "profile": args.profile, "batch": b, "model_info": minfo}
                if stop:
                    out.put(status="skipped", **rec)
                    continue
                try:
                    inputs = make_inputs(b)
                    times = time_point(torch, model, inputs, args.warmup, args.iters, args.max_point_seconds)
                    del inputs
                    p50, p99 = median(times), percentile(times, 99)
                    out.put(status="ok", p50_ms=p50, p99_ms=p99, n=len(times), min_ms=times[0], max_ms=times[-1], **rec)
                    print("[worker %s] %-11s b=%-4d p50 %.4f ms  p99 %.4f ms  (n=%d)"
                          % (args.profile, mname, b, p50, p99, len(times)), file=sys.stderr, flush=True)
                except Exception as e:  # noqa: BLE001 - OOM is expected, anything else is recorded
                    if _is_oom(torch, e):
                        out.put(status="oom", error=str(e).splitlines()[0][:300], **rec)
                        print("[worker %s] %s b=%d out of memory: larger batches skipped" % (args.profile, mname, b),
                              file=sys.stderr, flush=True)
                    else:
                        out.put(status="error", error="%s: %s" % (type(e).__name__, str(e)[:500]), **rec)
                        print("[worker %s] %s b=%d failed: %s" % (args.profile, mname, b, e), file=sys.stderr, flush=True)
                    stop = True
                    inputs = None
                gc.collect()
                torch.cuda.synchronize()
                torch.cuda.empty_cache()
            del model
            gc.collect()
            torch.cuda.empty_cache()
            out.put(type="model_done", model=mname, seconds=round(time.time() - t0, 1))
    return 0


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        if args.mps_child:
            import measure_mps
            return measure_mps.child(args)
        return worker_info(args) if args.worker_info else worker(args)
    if args.plot:
        drawn = 0
        for model in args.models:
            p = os.path.join(args.out_dir, model + ".csv")
            if os.path.exists(p):
                if not plot_csv(p, os.path.join(args.out_dir, model + ".svg")):
                    sys.exit("measure.py: matplotlib is not installed")
                drawn += 1
        log(args, "%d plot(s) drawn in %s" % (drawn, args.out_dir))
        return 0
    measure(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
