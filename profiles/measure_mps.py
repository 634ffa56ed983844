"""The MPS method of measure.py: partitions as MPS clients, alone and under neighbour load.

`python3 profiles/measure.py --method mps [--neighbour-load 0,0.3,0.6,1] [--layouts ...]`

* A private MPS control daemon is started (pipe and log folders under /tmp) unless
  ``--mps-pipe-dir`` names a running one, and it is always quit at the end, also on errors and on
  SIGINT/SIGTERM.
* Each partition is one MPS client process with ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` =
  round(100 * MIG SMs / GPU SMs), the way `migopt serve` places a worker on an emulated slice.
* ``neighbour_load`` 0: each profile is measured alone on the GPU, one after another.
* ``neighbour_load`` d > 0: every partition of a layout runs at once; each captures all its graphs,
  waits at a barrier, then times its sweep while keeping itself busy a fraction d of the time (after
  each replay of length L it idles for an exponential gap of mean L(1-d)/d, so overlaps are random).
  A partition that finishes its sweep keeps running its graphs at the same duty until every partition
  has finished, so each point is measured with all neighbours at duty d.
* Every query is timed on the host around graph replay + stream synchronisation, the way the
  server's worker (profiles/worker.py) runs a query.

Imported by measure.py (torch only inside the child).
"""

import contextlib
import math
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import measure as M


def thread_percentage(mig_sms, gpu_sms):
    """The MPS active-thread percentage that gives a client the SMs of a MIG slice: rounded up, because
    MPS grants whole TPCs (pairs of SMs) rounded down. Seen on the H200: 12% gave 14 SMs (device
    properties under MPS), so 16 SMs need 13%."""
    return max(1, min(100, int(math.ceil(100.0 * mig_sms / gpu_sms - 1e-9))))


@contextlib.contextmanager
def mps_daemon(pipe_dir=None, log=print):
    """Yields the environment of an MPS daemon: a private one (started and always quit) or an existing one."""
    if pipe_dir:
        yield {"CUDA_MPS_PIPE_DIRECTORY": pipe_dir}
        return
    if shutil.which("nvidia-cuda-mps-control") is None:
        sys.exit("measure.py: method mps needs nvidia-cuda-mps-control on PATH")
    root = tempfile.mkdtemp(prefix="migopt-mps-", dir="/tmp")
    env = {"CUDA_MPS_PIPE_DIRECTORY": os.path.join(root, "pipe"), "CUDA_MPS_LOG_DIRECTORY": os.path.join(root, "log")}
    for d in env.values():
        os.makedirs(d)
    full = dict(os.environ, **env)

    def quit_daemon():
        subprocess.run(["nvidia-cuda-mps-control"], input="quit\n", text=True, env=full, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def on_signal(signum, _frame):
        raise SystemExit("measure.py: signal %d" % signum)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    r = subprocess.run(["nvidia-cuda-mps-control", "-d"], env=full, capture_output=True, text=True, timeout=30)
    if r.returncode != 0:
        sys.exit("measure.py: could not start the MPS daemon: %s" % (r.stderr or r.stdout).strip())
    log("MPS daemon started (pipe %s)" % env["CUDA_MPS_PIPE_DIRECTORY"])
    try:
        yield env
    finally:
        quit_daemon()
        for s, h in old.items():
            signal.signal(s, h)
        log("MPS daemon stopped")
        shutil.rmtree(root, ignore_errors=True)


# ------------------------------------------------------------------------------------- parent side


def _child_cmd(args, prof, duties, sync_dir, result, seed):
    cmd = M._worker_cmd(args, ["--mps-child", "--profile", prof["profile"], "--memory-gib", str(prof["memory_gib"]),
                               "--duties", ",".join("%g" % d for d in duties), "--result-file", result,
                               "--seed", str(seed)])
    if sync_dir:
        cmd += ["--sync-dir", sync_dir]
    return cmd


def _has(recs, kind, phase):
    return any(r.get("type") == kind and r.get("phase") == phase for r in recs)


def run_group(args, members, duties, mps_env, gpu_sms):
    """Runs the members (profile dicts) through the duty phases; returns one record list each.

    Duty 0 in a group: the members take turns, each timed while the others idle (isolated).
    Duty d > 0: all members time their sweeps at once, each busy a fraction d of the time."""
    sync_dir = tempfile.mkdtemp(prefix="migopt-sync-", dir="/tmp") if len(members) > 1 else None
    procs, files = [], []
    first = {}
    for k, prof in enumerate(members):
        first.setdefault(prof["profile"], k)
    try:
        for k, prof in enumerate(members):
            fd, path = tempfile.mkstemp(prefix="migopt-mps-", suffix=".jsonl")
            os.close(fd)
            files.append(path)
            env = dict(os.environ, PYTHONUNBUFFERED="1", **mps_env)
            env["CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"] = str(thread_percentage(prof["mig_sms"], gpu_sms))
            cmd = _child_cmd(args, prof, duties, sync_dir, path, args.seed * 1000 + k) + ["--member", str(k)]
            if first[prof["profile"]] != k:
                cmd.append("--skip-isolated")
            procs.append(subprocess.Popen(cmd, env=env))
        deadline = time.time() + args.worker_timeout

        def wait_for(kind, j, who):
            while True:
                recs = [M.read_jsonl(files[i]) for i in who]
                if all(_has(r, kind, j) for r in recs):
                    return
                dead = [members[i]["profile"] for i, p in enumerate(procs) if p.poll() is not None]
                if dead or time.time() > deadline:
                    raise RuntimeError("partition(s) %s ended early or timed out (phase %d, waiting for %s)"
                                       % (dead or "all", j, kind))
                time.sleep(0.02)

        def flag(name):
            open(os.path.join(sync_dir, name), "w").close()

        if sync_dir:
            everyone = range(len(members))
            for j, duty in enumerate(duties):
                wait_for("ready", j, everyone)
                if duty == 0.0:
                    for k in everyone:  # one at a time, the others idle
                        flag("go.%d.%d" % (j, k))
                        wait_for("sweep_done", j, [k])
                else:
                    for k in everyone:
                        flag("go.%d.%d" % (j, k))
                    wait_for("sweep_done", j, everyone)
                    flag("stop.%d" % j)
        for p in procs:
            p.wait(timeout=max(1.0, deadline - time.time()))
    except (RuntimeError, subprocess.TimeoutExpired) as e:
        M.log(args, "layout %s: %s" % ([m["profile"] for m in members], e))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if sync_dir:
            shutil.rmtree(sync_dir, ignore_errors=True)
    out = [M.read_jsonl(f) for f in files]
    for f in files:
        os.unlink(f)
    return out


def measure(args, gpu, info, env):
    table = M.profile_table(gpu)
    by_name = {p["profile"]: p for p in table}
    if args.profiles:
        bad = [p for p in args.profiles if p not in by_name]
        if bad:
            sys.exit("measure.py: unknown profile(s) %s for %s" % (bad, gpu))
        table = [p for p in table if p["profile"] in args.profiles]
    loads = [d for d in args.neighbour_load if d > 0]
    layouts = (args.layouts or DEFAULT_layouts(gpu)) if loads else []
    for lay in layouts:
        bad = [p for p in lay if p not in by_name]
        if bad:
            sys.exit("measure.py: unknown profile(s) %s in layout %s" % (bad, lay))
    gpu_sms = info["multi_processor_count"]
    points, profiles_done, groups = [], [], []
    with mps_daemon(args.mps_pipe_dir, log=lambda m: M.log(args, m)) as mps_env:
        # a layout measures its partitions alone (taking turns) and then under each load, with one setup
        iso = [0.0] if 0.0 in args.neighbour_load else []
        covered = set()
        for lay in layouts:
            members = [by_name[p] for p in lay if p in {t["profile"] for t in table}]
            if len(members) > 1:
                groups.append((members, iso + loads))
                covered |= {m["profile"] for m in members}
        if iso:
            for prof in table:
                if prof["profile"] not in covered:
                    groups.append(([prof], iso))
        for members, duties in groups:
            t0 = time.time()
            recs = run_group(args, members, duties, mps_env, gpu_sms)
            seen = set()
            names = [m["profile"] for m in members]
            for prof, rs in zip(members, recs):
                info_rec = next((r for r in rs if r.get("type") == "info"), {})
                entry = dict(prof, mps_thread_percentage=thread_percentage(prof["mig_sms"], gpu_sms),
                             sms_granted=info_rec.get("sms_granted"), sms_granted_how=info_rec.get("sms_granted_how"),
                             neighbour_loads=duties, layout=names if len(names) > 1 else None)
                if prof["profile"] in seen:
                    continue  # a second partition of the same profile: its points are not kept
                seen.add(prof["profile"])
                pts = [dict(r, profile=prof["profile"]) for r in rs if r.get("type") == "point"]
                points += pts
                entry["points_ok"] = sum(p.get("status") == "ok" for p in pts)
                profiles_done.append(entry)
            M.log(args, "%s at neighbour load %s done in %.0f s" % ("+".join(names), duties, time.time() - t0))
            write_outputs(args, gpu, env, profiles_done, points)
    if not args.no_plot:
        for model in args.models:
            p = os.path.join(args.out_dir, model + ".csv")
            if os.path.exists(p):
                plot_loaded(p, os.path.join(args.out_dir, model + ".svg"))
    return points


def DEFAULT_layouts(gpu):  # noqa: N802 - reads like the table it returns
    if gpu not in M.DEFAULT_LOAD_LAYOUTS:
        sys.exit("measure.py: no default load layouts for %s; pass --layouts" % gpu)
    return M.DEFAULT_LOAD_LAYOUTS[gpu]


def settings(args):
    return {
        "dtype": args.dtype, "batches": args.batches, "warmup_replays": args.warmup, "timed_replays": args.iters,
        "max_point_seconds": args.max_point_seconds, "seq_len_bert": args.seq_len, "image_size": args.image_size,
        "neighbour_loads": args.neighbour_load, "inference_mode": True,
        "cuda_graphs": "every (model, batch) graph captured first; each query = replay on the partition's stream + "
                       "stream synchronise, timed on the host (time.perf_counter)",
        "duty": "after each replay of length L the partition idles for an exponential gap of mean L(1-d)/d",
        "channels_last_cnns": True, "cudnn_benchmark": not args.no_cudnn_benchmark,
        "weights": "random (no download): torchvision weights=None, transformers BertConfig() defaults",
        "memory_cap": "torch.cuda.set_per_process_memory_fraction(profile GiB / total GiB)",
        "processes": "one MPS client per partition; neighbour_load 0: alone on the GPU; d > 0: all partitions of "
                     "the layout at once",
        "latency": "p50 = median, p99 = nearest-rank 99th percentile of the timed queries",
    }


def write_outputs(args, gpu, env, profiles, points):
    order = []
    for p in profiles:
        if p["profile"] not in order:
            order.append(p["profile"])
    for model in args.models:
        mine = [p for p in points if p["model"] == model]
        rows = M.rows_from_points(mine, gpu, "mps", order)
        if rows:
            M.write_csv(os.path.join(args.out_dir, model + ".csv"), rows)
        side = M.build_sidecar(model, gpu, "mps", env, settings(args), profiles, mine)
        side["csv_columns"]["neighbour_load"] = (
            "fraction of the time each other partition of the layout was busy while this row was measured "
            "(0: alone on the GPU)")
        side["csv_columns"]["latency_ms"] = "median host-timed latency of one query (graph replay + synchronise), ms"
        M.write_json(os.path.join(args.out_dir, model + ".json"), side)


def plot_loaded(csv_path, svg_path):
    """Latency against batch per profile, one line style per neighbour load."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    rows = M.read_csv(csv_path)
    if not rows:
        return False
    matplotlib.rcParams["svg.hashsalt"] = "migopt"
    profiles = []
    for r in rows:
        if r["profile"] not in profiles:
            profiles.append(r["profile"])
    loads = sorted({float(r.get("neighbour_load") or 0) for r in rows})
    styles = ["-", "--", "-.", ":"]
    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for i, prof in enumerate(profiles):
        for j, d in enumerate(loads):
            pts = sorted((int(r["batch"]), float(r["latency_ms"])) for r in rows
                         if r["profile"] == prof and float(r.get("neighbour_load") or 0) == d)
            if pts:
                ax.plot([b for b, _ in pts], [l for _, l in pts], marker="o", markersize=2.5,
                        linestyle=styles[j % len(styles)], color=colors[i % len(colors)],
                        label="%s, neighbours %d%%" % (prof, round(100 * d)))
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("batch size")
    ax.set_ylabel("median latency per query (ms)")
    ax.set_title("%s on %s (MPS; line style = neighbour load)" % (rows[0]["model"], rows[0]["gpu"]))
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(svg_path, format="svg", metadata={"Date": None})
    plt.close(fig)
    return True


# -------------------------------------------------------------------------------------- child side


def child(args):
    out = M._Out(args.result_file)
    import gc
    import torch
    dtype = M._torch_dtype(torch, args.dtype)
    props = M.start_cuda(torch, not args.no_cudnn_benchmark)
    if args.memory_gib:
        M.cap_memory(torch, props, args.memory_gib)
    info = {"type": "info", "profile": args.profile, "device_name": torch.cuda.get_device_name(0),
            "mps_thread_percentage": os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE")}
    info.update(M.granted_sms(torch, None))
    out.put(**info)
    stream = torch.cuda.Stream()
    graphs = []  # (model, batch, graph)
    keep = []
    with torch.inference_mode():
        for mname in args.models:
            model, make_inputs, minfo = M.build_model(torch, mname, dtype, args.image_size, args.seq_len)
            stop = False
            for b in args.batches:
                rec = {"type": "point", "model": mname, "profile": args.profile, "batch": b, "model_info": minfo}
                if stop:
                    out.put(status="skipped", **rec)
                    continue
                try:
                    x = make_inputs(b)
                    g, y = M.capture_graph(torch, model, x, stream)
                    graphs.append((mname, b, g, minfo))
                    keep.append((x, y))  # the graph reads and writes these addresses
                except Exception as e:  # noqa: BLE001
                    status = "oom" if M._is_oom(torch, e) else "error"
                    out.put(status=status, error=str(e).splitlines()[0][:300] if str(e) else type(e).__name__, **rec)
                    stop = True
                    gc.collect()
                    torch.cuda.empty_cache()
            keep.append(model)  # the graphs read its weights: freeing it corrupts every replay
    rng = random.Random(args.seed)

    def run(g, duty):
        t0 = time.perf_counter()
        with torch.cuda.stream(stream):
            g.replay()
        stream.synchronize()
        dt = time.perf_counter() - t0
        if 0.0 < duty < 1.0:
            time.sleep(rng.expovariate(duty / (dt * (1.0 - duty))))
        return dt

    sync = args.sync_dir
    for j, duty in enumerate(args.duties or [0.0]):
        if sync:
            out.put(type="ready", phase=j)
            while not os.path.exists(os.path.join(sync, "go.%d.%d" % (j, args.member))):
                time.sleep(0.002)
        for mname, b, g, minfo in ([] if duty == 0.0 and args.skip_isolated else graphs):
            for _ in range(args.warmup):
                run(g, duty)
            est = run(g, duty)
            n = args.iters
            if est * n > args.max_point_seconds:
                n = max(50, int(args.max_point_seconds / max(est, 1e-9)))
            times = sorted(run(g, duty) * 1000.0 for _ in range(n))
            p50, p99 = M.median(times), M.percentile(times, 99)
            out.put(type="point", status="ok", model=mname, profile=args.profile, batch=b, p50_ms=p50, p99_ms=p99,
                    n=n, min_ms=times[0], max_ms=times[-1], neighbour_load=duty, model_info=minfo)
            print("[mps %s d=%g] %-11s b=%-4d p50 %.4f ms p99 %.4f ms" % (args.profile, duty, mname, b, p50, p99),
                  file=sys.stderr, flush=True)
        out.put(type="sweep_done", phase=j)
        if sync and duty > 0.0:
            k = 0
            stop = os.path.join(sync, "stop.%d" % j)
            while graphs and not os.path.exists(stop):
                run(graphs[k % len(graphs)][2], duty)
                k += 1
    for mname in args.models:
        out.put(type="model_done", model=mname)
    return 0
