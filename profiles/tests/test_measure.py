"""Tests of profiles/measure.py and profiles/compare_mig.py (stdlib unittest; no torch or GPU needed).

Run from the repository root:  python3 -m unittest discover -s profiles/tests -v
The measuring test runs only where PyTorch sees a CUDA device; elsewhere it is skipped with the reason.
"""

import contextlib
import csv
import glob
import importlib.util
import io
import json
import os
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PROFILES = os.path.dirname(HERE)
sys.path.insert(0, PROFILES)

import compare_mig  # noqa: E402
import measure  # noqa: E402

HEADER = "model,gpu,profile,batch,latency_ms,latency_p99_ms,procs,throughput_qps,method"
H100_PROFILES = ["1g.10gb", "1g.20gb", "2g.20gb", "3g.40gb", "4g.40gb", "7g.80gb"]


def _quiet_parse(argv):
    with contextlib.redirect_stderr(io.StringIO()):
        return measure.parse_args(argv)


def _torch_cuda_reason():
    if importlib.util.find_spec("torch") is None:
        return "PyTorch is not installed"
    try:
        import torch
    except Exception as e:  # pragma: no cover
        return "PyTorch does not import: %s" % e
    if not torch.cuda.is_available():
        return "no CUDA device visible to PyTorch"
    return None


class ImportTest(unittest.TestCase):
    def test_module_imports_without_torch(self):
        # measure.py must not import torch at module level
        with open(os.path.join(PROFILES, "measure.py")) as f:
            src = f.read()
        top = [l for l in src.splitlines() if l.startswith("import ") or l.startswith("from ")]
        self.assertFalse([l for l in top if "torch" in l or "triton" in l or "transformers" in l], top)


class ArgsTest(unittest.TestCase):
    def test_defaults(self):
        a = _quiet_parse([])
        self.assertEqual(a.models, ["resnet50", "mobilenetv2", "bert-base", "vit-b16"])
        self.assertEqual(a.batches, [1, 2, 4, 8, 16, 32, 64, 128, 256])
        self.assertEqual(a.dtype, "fp16")
        self.assertEqual(a.seq_len, 128)
        self.assertIsNone(a.method)
        self.assertGreaterEqual(a.warmup, 10)
        self.assertGreaterEqual(a.iters, 50)
        self.assertFalse(a.worker)

    def test_subsets(self):
        a = _quiet_parse(["--models", "bert-base,resnet50", "--batches", "8,1,8,4", "--dtype", "bf16",
                          "--seq-len", "64", "--out-dir", "x", "--profiles", "1g.10gb,7g.80gb"])
        self.assertEqual(a.models, ["bert-base", "resnet50"])
        self.assertEqual(a.batches, [1, 4, 8])
        self.assertEqual(a.dtype, "bf16")
        self.assertEqual(a.seq_len, 64)
        self.assertEqual(a.out_dir, "x")
        self.assertEqual(a.profiles, ["1g.10gb", "7g.80gb"])
        self.assertEqual(_quiet_parse(["--models", "all"]).models, list(measure.MODELS))

    def test_rejects_bad_values(self):
        for argv in (["--models", "resnet18"], ["--batches", "0"], ["--batches", "a,b"], ["--dtype", "int8"],
                     ["--iters", "10"], ["--warmup", "2"], ["--method", "mpx"],
                     ["--neighbour-load", "0.3"], ["--method", "mps", "--neighbour-load", "1.5"],
                     ["--method", "mps", "--layouts", "3g.71gb"],
                     ["--method", "green-context", "--mig-devices", "MIG-a"],
                     ["--mig-devices", "MIG-a,MIG-b", "--mig-profiles", "1g.10gb"]):
            with self.assertRaises(SystemExit, msg=argv):
                _quiet_parse(argv)

    def test_mps_method_arguments(self):
        a = _quiet_parse(["--method", "mps", "--neighbour-load", "1,0,0.3", "--layouts", "3g.71gb,1g.18gb;4g.71gb,1g.35gb"])
        self.assertEqual(a.neighbour_load, [0.0, 0.3, 1.0])
        self.assertEqual(a.layouts, [["3g.71gb", "1g.18gb"], ["4g.71gb", "1g.35gb"]])

    def test_mig_devices_imply_method_mig(self):
        a = _quiet_parse(["--mig-devices", "MIG-aaa,MIG-bbb", "--mig-profiles", "1g.10gb,3g.40gb"])
        self.assertEqual(a.method, "mig")
        self.assertEqual(a.mig_devices, ["MIG-aaa", "MIG-bbb"])
        self.assertEqual(a.mig_profiles, ["1g.10gb", "3g.40gb"])


class GpuNameTest(unittest.TestCase):
    def test_mapping(self):
        cases = {
            "NVIDIA H100 80GB HBM3": "H100-80GB",
            "NVIDIA H100 PCIe": "H100-80GB",
            "NVIDIA H100 80GB HBM3 MIG 1g.10gb": "H100-80GB",
            "NVIDIA H200": "H200-141GB",
            "NVIDIA H200 MIG 3g.71gb": "H200-141GB",
            "NVIDIA A100-SXM4-80GB": "A100-80GB",
            "NVIDIA A100 80GB PCIe": "A100-80GB",
            "NVIDIA A100-SXM4-40GB": "A100-40GB",
            "NVIDIA A100-PCIE-40GB": "A100-40GB",
            "NVIDIA A30": "A30-24GB",
            "NVIDIA GeForce RTX 4090": None,
            "NVIDIA H100 NVL": None,
        }
        for name, want in cases.items():
            self.assertEqual(measure.map_gpu_name(name), want, name)

    def test_profile_from_device_name(self):
        self.assertEqual(measure.profile_from_device_name("NVIDIA H100 80GB HBM3 MIG 1g.10gb"), "1g.10gb")
        self.assertEqual(measure.profile_from_device_name("NVIDIA H200 MIG 7g.141gb"), "7g.141gb")
        self.assertIsNone(measure.profile_from_device_name("NVIDIA H100 80GB HBM3"))


class ProfileTableTest(unittest.TestCase):
    def test_h100_table(self):
        t = measure.profile_table("H100-80GB")
        self.assertEqual([p["profile"] for p in t], H100_PROFILES)
        self.assertEqual([p["sms_requested"] for p in t], [16, 24, 32, 56, 64, 132])
        self.assertEqual([p["mig_sms"] for p in t], [16, 26, 32, 60, 64, 132])
        self.assertEqual(t[0]["memory_gib"], 9.75)
        self.assertEqual(t[-1]["memory_gib"], 79.25)

    def test_h200_same_sms(self):
        h100 = measure.profile_table("H100-80GB")
        h200 = measure.profile_table("H200-141GB")
        self.assertEqual([p["profile"] for p in h200],
                         ["1g.18gb", "1g.35gb", "2g.35gb", "3g.71gb", "4g.71gb", "7g.141gb"])
        self.assertEqual([p["sms_requested"] for p in h200], [p["sms_requested"] for p in h100])

    def test_hopper_requests_are_grantable_and_conservative(self):
        for gpu in ("H100-80GB", "H200-141GB"):
            for p in measure.profile_table(gpu)[:-1]:  # the last is the whole GPU (132 SMs), granted as is
                self.assertEqual(measure.round_up_sms(p["sms_requested"]), p["sms_requested"], p)
                self.assertLessEqual(p["sms_requested"], p["mig_sms"], p)
        self.assertEqual(measure.round_up_sms(26), 32)
        self.assertEqual(measure.round_up_sms(60), 64)

    def test_every_table_is_sane(self):
        for gpu in measure.PROFILE_TABLES:
            t = measure.profile_table(gpu)
            for a, b in zip(t, t[1:]):
                self.assertLessEqual(a["mig_sms"], b["mig_sms"], gpu)
                self.assertLessEqual(a["memory_gib"], b["memory_gib"], gpu)
            for p in t:
                self.assertEqual(measure.profile_from_device_name("X MIG " + p["profile"]), p["profile"])

    def test_unknown_gpu(self):
        with self.assertRaises(KeyError):
            measure.profile_table("RTX-4090")


def _points():
    mk = lambda b, st, p50=None, p99=None, prof="1g.10gb": dict(  # noqa: E731
        type="point", model="resnet50", profile=prof, batch=b, status=st, p50_ms=p50, p99_ms=p99, n=100)
    return [
        mk(1, "ok", 1.16, 1.17), mk(2, "ok", 1.5, 1.6), mk(4, "oom"), mk(8, "skipped"),
        mk(1, "ok", 0.9, 0.95, "7g.80gb"), mk(2, "error", prof="7g.80gb"),
    ]


class CsvTest(unittest.TestCase):
    def test_stats(self):
        vals = sorted(float(i) for i in range(1, 101))
        self.assertEqual(measure.median(vals), 50.5)
        self.assertEqual(measure.percentile(vals, 99), 99.0)
        self.assertEqual(measure.percentile(vals, 100), 100.0)
        self.assertEqual(measure.median([3.0]), 3.0)
        self.assertEqual(measure.percentile([3.0], 99), 3.0)

    def test_make_row(self):
        r = measure.make_row("bert-base", "H100-80GB", "3g.40gb", 32, 10.0, 12.5, "green-context")
        self.assertEqual(r["throughput_qps"], 3200.0)
        self.assertEqual(r["procs"], 1)
        with self.assertRaises(ValueError):
            measure.make_row("bert-base", "H100-80GB", "3g.40gb", 32, 0.0, 0.0, "green-context")

    def test_rows_skip_oom_and_errors(self):
        rows = measure.rows_from_points(_points(), "H100-80GB", "green-context", ["1g.10gb", "7g.80gb"])
        self.assertEqual([(r["profile"], r["batch"]) for r in rows], [("1g.10gb", 1), ("1g.10gb", 2), ("7g.80gb", 1)])

    def test_written_csv(self):
        rows = measure.rows_from_points(_points(), "H100-80GB", "green-context", ["1g.10gb", "7g.80gb"])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "resnet50.csv")
            measure.write_csv(path, rows)
            with open(path) as f:
                text = f.read()
            self.assertEqual(text.splitlines()[0], HEADER)
            got = list(csv.DictReader(io.StringIO(text)))
            self.assertEqual(len(got), 3)
            first = got[0]
            self.assertEqual(first["model"], "resnet50")
            self.assertEqual(first["gpu"], "H100-80GB")
            self.assertEqual(first["profile"], "1g.10gb")
            self.assertEqual(first["batch"], "1")
            self.assertEqual(first["latency_ms"], "1.1600")
            self.assertEqual(first["latency_p99_ms"], "1.1700")
            self.assertEqual(first["procs"], "1")
            self.assertEqual(first["method"], "green-context")
            for r in got:
                want = int(r["procs"]) * int(r["batch"]) * 1000.0 / float(r["latency_ms"])
                self.assertAlmostEqual(float(r["throughput_qps"]), want, places=2)
                self.assertGreater(float(r["latency_ms"]), 0.0)
            self.assertNotIn(",4,", text)  # the OOM size left no row
            self.assertNotIn(",8,", text)
            self.assertFalse(os.path.exists(path + ".tmp"))


class SidecarTest(unittest.TestCase):
    def test_content(self):
        profiles = [dict(p, memory_fraction=0.12, sms_granted=p["sms_requested"])
                    for p in measure.profile_table("H100-80GB") if p["profile"] in ("1g.10gb", "7g.80gb")]
        env = {"date_utc": "2026-11-27T00:00:00+00:00", "device_name": "NVIDIA H100 80GB HBM3",
               "driver": "580.159.04", "cuda": "13.0", "torch": "2.11.0"}
        side = measure.build_sidecar("resnet50", "H100-80GB", "green-context", env, {"dtype": "fp16"},
                                     profiles, _points())
        for key in ("model", "gpu", "method", "date_utc", "environment", "settings", "profiles", "limits"):
            self.assertIn(key, side)
        self.assertEqual(side["environment"]["driver"], "580.159.04")
        self.assertNotIn("date_utc", side["environment"])
        p1, p7 = side["profiles"]
        self.assertEqual(p1["sms_requested"], 16)
        self.assertEqual(p1["sms_granted"], 16)
        self.assertEqual(p1["batches_measured"], [1, 2])
        self.assertEqual(p1["first_oom_batch"], 4)
        self.assertEqual(p1["batches_skipped_after_oom"], [8])
        self.assertEqual(p7["first_oom_batch"], None)
        self.assertEqual(len(p7["errors"]), 1)
        self.assertIn("bandwidth", side["limits"])
        self.assertIn("L2", side["limits"])
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "x.json")
            measure.write_json(path, side)
            with open(path) as f:
                self.assertEqual(json.load(f), side)


class ShippedDataTest(unittest.TestCase):
    """The committed H100 profiles follow the schema and look physically sane."""

    DIR = os.path.join(PROFILES, "h100-80gb")

    def test_files(self):
        for model in measure.MODELS:
            for ext in ("csv", "json"):
                self.assertTrue(os.path.exists(os.path.join(self.DIR, "%s.%s" % (model, ext))), (model, ext))

    def test_csvs(self):
        for path in sorted(glob.glob(os.path.join(self.DIR, "*.csv"))):
            model = os.path.basename(path)[:-4]
            with open(path) as f:
                text = f.read()
            self.assertEqual(text.splitlines()[0], HEADER, path)
            rows = list(csv.DictReader(io.StringIO(text)))
            self.assertEqual(sorted({r["profile"] for r in rows}), sorted(H100_PROFILES), path)
            lat = {}
            for r in rows:
                self.assertEqual(r["model"], model)
                self.assertEqual(r["gpu"], "H100-80GB")
                self.assertEqual(r["method"], "green-context")
                self.assertEqual(r["procs"], "1")
                ms, p99 = float(r["latency_ms"]), float(r["latency_p99_ms"])
                self.assertGreater(ms, 0.0)
                self.assertGreaterEqual(p99, ms)
                self.assertAlmostEqual(float(r["throughput_qps"]), int(r["batch"]) * 1000.0 / ms,
                                       delta=0.01 * float(r["throughput_qps"]))
                lat[(r["profile"], int(r["batch"]))] = ms
            # large batches: latency grows with batch, falls with SMs (small batches are launch-bound, noisy)
            for prof in H100_PROFILES:
                self.assertLess(lat[(prof, 16)], lat[(prof, 64)])
                self.assertLess(lat[(prof, 64)], lat[(prof, 256)])
            for small, big in zip(H100_PROFILES, H100_PROFILES[1:]):
                self.assertGreater(lat[(small, 256)], lat[(big, 256)], (path, small, big))

    def test_sidecars(self):
        for path in sorted(glob.glob(os.path.join(self.DIR, "*.json"))):
            with open(path) as f:
                side = json.load(f)
            self.assertEqual(side["gpu"], "H100-80GB")
            self.assertEqual(side["method"], "green-context")
            self.assertEqual([p["profile"] for p in side["profiles"]], H100_PROFILES)
            for p in side["profiles"]:
                self.assertEqual(p["sms_granted"], p["sms_requested"], path)
            self.assertIn("torch", side["environment"])
            self.assertIn("driver", side["environment"])


class CompareMigTest(unittest.TestCase):
    def test_ratios(self):
        with tempfile.TemporaryDirectory() as d:
            p = os.path.join(d, "resnet50.csv")
            with open(p, "w") as f:
                f.write("Mig instance,Batch size,Workload Number,Throughput,Latency\n"
                        "1,8,1,400,0.02\n1,8,2,200,0.04\n7,8,1,1600,0.005\n3,8,1,800,0.01\n1,64,1,0,0\n")
            data = compare_mig.read_parva(p)
            self.assertEqual(sorted(data), [(1, 8), (3, 8), (7, 8)])
            self.assertAlmostEqual(data[(1, 8)], 20.0)
            self.assertAlmostEqual(compare_mig.ratio(data, 1, 8), 4.0)
            self.assertIsNone(compare_mig.ratio(data, 1, 64))
            lines = compare_mig.table("resnet50", data, data, batches=(8, 64))
            self.assertIn("| 8 | 4.00 | 4.00 | 2.00 | 2.00 |", lines)
            self.assertIn("| 64 | - | - | - | - |", lines)

    def test_fails_and_names_a_missing_dataset(self):
        err = io.StringIO()
        missing = os.path.join(tempfile.gettempdir(), "no-such-dataset-dir")
        with contextlib.redirect_stderr(err):
            rc = compare_mig.main(["--dataset", missing])
        self.assertEqual(rc, 2)
        self.assertIn(missing, err.getvalue())

    def test_the_vendored_dataset_compares(self):
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            rc = compare_mig.main([])
        self.assertEqual(rc, 0)
        self.assertIn("resnet50", out.getvalue())


_REASON = _torch_cuda_reason()
if _REASON:
    print("test_measure: GPU measuring test skipped: %s" % _REASON, file=sys.stderr)


@unittest.skipIf(_REASON is not None, "measuring needs PyTorch and a CUDA GPU: %s" % _REASON)
class MeasureOnGpuTest(unittest.TestCase):
    def test_small_run(self):
        with tempfile.TemporaryDirectory() as d:
            argv = ["--out-dir", d, "--models", "mobilenetv2", "--batches", "1,2", "--no-plot", "--quiet"]
            import torch
            name = torch.cuda.get_device_name(0)
            gpu = measure.map_gpu_name(name)
            if gpu is None:
                self.skipTest("no MIG profile table for %s" % name)
            if "MIG" not in name.split():  # green contexts: the full-GPU profile only, to be quick
                argv += ["--profiles", measure.profile_table(gpu)[-1]["profile"]]
            self.assertEqual(measure.main(argv), 0)
            with open(os.path.join(d, "mobilenetv2.csv")) as f:
                rows = list(csv.DictReader(f))
            self.assertEqual([int(r["batch"]) for r in rows], [1, 2])
            self.assertTrue(all(float(r["latency_ms"]) > 0 for r in rows))


if __name__ == "__main__":
    unittest.main()
