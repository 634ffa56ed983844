#!/usr/bin/env python3
"""One inference worker of `migopt serve`: one process per planned MIG instance.

The front end (`migopt serve`, Rust) starts this script once per instance of the plan, with the
instance's placement in the environment:

* a real MIG device: ``CUDA_VISIBLE_DEVICES=MIG-<uuid>`` (set before CUDA starts);
* an emulated slice of a GPU that is not in MIG mode: an MPS daemon plus
  ``CUDA_MPS_ACTIVE_THREAD_PERCENTAGE`` = the slice's share of the GPU's SMs (and
  ``CUDA_VISIBLE_DEVICES=<gpu index>``). Green contexts are no option across processes (see
  profiles/README.md);
* ``--fake``: no GPU at all; each query sleeps for the latency the front end passes in
  (``--fake-latencies``), so the server's logic can be tested on any machine.

The model is one of measure.py's (same builders, same inputs, fp16, channels-last CNNs,
``cudnn.benchmark``), and one CUDA graph is captured per batch size the instance may run. A query
of a batch size without its own graph runs in the graph of the next larger captured size (padding).

Protocol (text lines, ASCII, one message per line):

    worker -> front end   ready <json>                 once, when every graph is captured
    front end -> worker   q <id> <batch>               run one query batch
    worker -> front end   d <id> <service_us> <ran>    done: service time (host clock, from taking the
                                                       query to its result on the host), and the batch
                                                       size actually run (padding)
    front end -> worker   x                            exit (end of input does the same)
    worker -> front end   e <id or -> <message>        a failure; the worker then exits non-zero

Queries are served one at a time in the order they arrive: the pipe is the instance's FIFO queue.
The worker's own stdout is kept for the protocol (anything a library prints goes to stderr), and
the worker exits when its parent dies (stdin reaches end of file; on Linux also PR_SET_PDEATHSIG),
so no worker outlives the front end.

torch is imported lazily, so ``--fake`` runs without PyTorch.
"""

import argparse
import json
import os
import sys
import time

PROTOCOL_VERSION = 1

HERE = os.path.dirname(os.path.abspath(__file__))


def _batch_list(text):
    try:
        vals = sorted({int(x) for x in text.split(",") if x.strip()})
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated batch sizes, got %r" % text)
    if not vals or vals[0] < 1:
        raise argparse.ArgumentTypeError("batch sizes must be positive integers")
    return vals


def _latency_table(text):
    """'1:1.17,2:1.48' -> {1: 1.17, 2: 1.48} (ms)."""
    out = {}
    for item in text.split(","):
        item = item.strip()
        if not item:
            continue
        try:
            b, ms = item.split(":")
            b, ms = int(b), float(ms)
        except ValueError:
            raise argparse.ArgumentTypeError("expected batch:ms pairs, got %r" % item)
        if b < 1 or not (ms >= 0.0) or ms == float("inf"):
            raise argparse.ArgumentTypeError("bad batch:ms pair %r" % item)
        out[b] = ms
    if not out:
        raise argparse.ArgumentTypeError("no batch:ms pairs in %r" % text)
    return out


def build_parser():
    p = argparse.ArgumentParser(prog="worker.py", description="One inference worker of `migopt serve`.")
    p.add_argument("--model", required=True, help="resnet50, mobilenetv2, bert-base or vit-b16")
    p.add_argument("--batches", type=_batch_list, default=None,
                   help="batch sizes to capture a CUDA graph for (comma-separated)")
    p.add_argument("--dtype", choices=("fp16", "bf16", "fp32"), default="fp16")
    p.add_argument("--seq-len", type=int, default=128)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--warmup", type=int, default=5, help="replays of each graph before ready")
    p.add_argument("--memory-gib", type=float, default=0.0,
                   help="cap PyTorch's allocator at this much memory (emulated slices)")
    p.add_argument("--label", default="", help="the instance, for messages")
    p.add_argument("--fake", action="store_true", help="no GPU: sleep for --fake-latencies")
    p.add_argument("--fake-latencies", type=_latency_table, default=None,
                   help="fake worker: batch:ms pairs, the service time of each batch size")
    p.add_argument("--fake-startup-s", type=float, default=0.0, help="fake worker: seconds before ready")
    p.add_argument("--fake-hang-after", type=int, default=None, help=argparse.SUPPRESS)  # tests: stop answering
    p.add_argument("--fake-die-after", type=int, default=None, help=argparse.SUPPRESS)  # tests: exit abruptly
    return p


def parse_args(argv=None):
    parser = build_parser()
    a = parser.parse_args(argv)
    if a.fake and not a.fake_latencies:
        parser.error("--fake needs --fake-latencies")
    if not a.fake and not a.batches:
        parser.error("--batches is required (the CUDA graphs to capture)")
    if a.fake and not a.batches:
        a.batches = sorted(a.fake_latencies)
    return a


def pick_batch(captured, b):
    """The captured batch size a query of batch b runs in: b itself, else the next larger one."""
    for c in captured:
        if c >= b:
            return c
    return None


def set_parent_death_signal():
    """Linux: get SIGTERM when the parent dies (best effort; stdin's end of file is the main path)."""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes
        import signal
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, int(signal.SIGTERM), 0, 0, 0)  # PR_SET_PDEATHSIG
        if os.getppid() == 1:  # the parent died before prctl
            sys.exit(0)
    except Exception:
        pass


def protocol_streams():
    """(input, output) for the protocol. fd 1 becomes a copy of stderr so that library prints
    cannot corrupt the protocol."""
    out_fd = os.dup(1)
    os.dup2(2, 1)
    out = os.fdopen(out_fd, "w", buffering=1)
    sys.stdout = sys.stderr
    return sys.stdin, out


class FakeEngine:
    """Sleeps for the given service time of each batch size; no GPU, no torch."""

    def __init__(self, latencies_ms, startup_s=0.0, hang_after=None, die_after=None):
        self.lat = dict(latencies_ms)
        self.captured = sorted(self.lat)
        self.served = 0
        self.hang_after, self.die_after = hang_after, die_after
        if startup_s > 0:
            time.sleep(startup_s)

    def info(self):
        return {"engine": "fake", "batches": self.captured}

    def run(self, batch):
        self.served += 1
        if self.die_after is not None and self.served > self.die_after:
            os._exit(9)
        if self.hang_after is not None and self.served > self.hang_after:
            while True:
                time.sleep(3600)
        t0 = time.perf_counter()
        deadline = t0 + self.lat[batch] / 1000.0
        # sleep most of it, spin the last 0.2 ms: time.sleep alone overshoots by tens of µs
        rest = deadline - time.perf_counter() - 0.0002
        if rest > 0:
            time.sleep(rest)
        while time.perf_counter() < deadline:
            pass
        return time.perf_counter() - t0


class TorchEngine:
    """A measure.py model with one CUDA graph per batch size, replayed on its own stream."""

    def __init__(self, args):
        import torch
        sys.path.insert(0, HERE)
        import measure
        self.torch = torch
        dtype = measure._torch_dtype(torch, args.dtype)
        props = measure.start_cuda(torch, True)
        if args.memory_gib > 0:
            measure.cap_memory(torch, props, args.memory_gib)
        self.device = {"name": torch.cuda.get_device_name(0), "multi_processor_count": props.multi_processor_count,
                       "total_memory_bytes": props.total_memory,
                       "mps_thread_percentage": os.environ.get("CUDA_MPS_ACTIVE_THREAD_PERCENTAGE"),
                       "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
        self.stream = torch.cuda.Stream()
        self.graphs = {}
        self.model = None  # kept for the worker's lifetime: the graphs read its weights
        with torch.inference_mode():
            model, make_inputs, self.model_info = measure.build_model(
                torch, args.model, dtype, args.image_size, args.seq_len)
            self.model = model
            for b in args.batches:
                inputs = make_inputs(b)
                g, out = measure.capture_graph(torch, model, inputs, self.stream)
                self.graphs[b] = (g, inputs, out)  # keep the graph's tensors alive
                for _ in range(max(0, args.warmup)):
                    self._replay(g)
        self.captured = sorted(self.graphs)

    def _replay(self, g):
        with self.torch.cuda.stream(self.stream):
            g.replay()
        self.stream.synchronize()

    def info(self):
        return {"engine": "torch", "batches": self.captured, "device": self.device, "model": self.model_info}

    def run(self, batch):
        g = self.graphs[batch][0]
        t0 = time.perf_counter()
        self._replay(g)
        return time.perf_counter() - t0


def serve(engine, inp, out):
    """The request loop. Returns the exit status."""
    captured = engine.captured
    while True:
        line = inp.readline()
        if not line:
            return 0  # the front end closed the pipe (or died)
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "x":
            return 0
        if parts[0] != "q" or len(parts) != 3:
            out.write("e - bad request %r\n" % line.strip()[:80])
            return 3
        qid, b = parts[1], int(parts[2])
        ran = pick_batch(captured, b)
        if ran is None:
            out.write("e %s batch %d is larger than every captured batch (%s)\n"
                      % (qid, b, ",".join(map(str, captured))))
            return 3
        try:
            secs = engine.run(ran)
        except Exception as e:  # noqa: BLE001 - reported to the front end, then exit
            out.write("e %s %s: %s\n" % (qid, type(e).__name__, str(e).splitlines()[0][:200] if str(e) else ""))
            return 4
        out.write("d %s %.3f %d\n" % (qid, secs * 1e6, ran))


def main(argv=None):
    args = parse_args(argv)
    set_parent_death_signal()
    inp, out = protocol_streams()
    try:
        engine = (FakeEngine(args.fake_latencies, args.fake_startup_s, args.fake_hang_after, args.fake_die_after)
                  if args.fake else TorchEngine(args))
    except Exception as e:  # noqa: BLE001
        out.write("e - startup failed: %s: %s\n" % (type(e).__name__, str(e).replace("\n", " ")[:300]))
        return 2
    info = engine.info()
    info.update({"protocol": PROTOCOL_VERSION, "pid": os.getpid(), "label": args.label, "model_name": args.model})
    out.write("ready %s\n" % json.dumps(info, separators=(",", ":")))
    print("[worker %s] ready: %s graphs %s" % (args.label, args.model, engine.captured), file=sys.stderr, flush=True)
    return serve(engine, inp, out)


if __name__ == "__main__":
    sys.exit(main())
