"""Tests of profiles/worker.py (the inference worker of `migopt serve`) and of the MPS method's
helpers in profiles/measure_mps.py. stdlib unittest; no torch or GPU needed: the worker runs with
--fake, which sleeps for the latencies it is given."""

import csv
import os
import subprocess
import sys
import tempfile
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
PROFILES = os.path.dirname(HERE)
sys.path.insert(0, PROFILES)

import measure  # noqa: E402
import measure_mps  # noqa: E402
import worker  # noqa: E402

WORKER = os.path.join(PROFILES, "worker.py")


def start_fake(lat="1:2.0,4:5.0", extra=()):
    return subprocess.Popen([sys.executable, WORKER, "--model", "resnet50", "--fake", "--fake-latencies", lat,
                             "--label", "test"] + list(extra),
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


class WorkerProtocolTest(unittest.TestCase):
    def test_fake_worker_serves_in_order_and_pads(self):
        p = start_fake()
        try:
            ready = p.stdout.readline().split(" ", 1)
            self.assertEqual(ready[0], "ready")
            self.assertIn('"batches":[1,4]', ready[1])
            t0 = time.perf_counter()
            p.stdin.write("q 7 1\nq 8 3\nq 9 4\n")
            p.stdin.flush()
            got = [p.stdout.readline().split() for _ in range(3)]
            wall = time.perf_counter() - t0
            self.assertEqual([g[0] for g in got], ["d", "d", "d"])
            self.assertEqual([g[1] for g in got], ["7", "8", "9"])
            self.assertEqual([g[3] for g in got], ["1", "4", "4"])  # batch 3 runs in batch 4's graph
            svc = [float(g[2]) / 1000.0 for g in got]
            for s, want in zip(svc, [2.0, 5.0, 5.0]):
                self.assertGreaterEqual(s, want)
                self.assertLess(s, want + 100.0)  # a loaded CI machine oversleeps
            self.assertGreaterEqual(wall * 1000.0, 12.0)  # one at a time: 2 + 5 + 5 ms
            p.stdin.write("x\n")
            p.stdin.flush()
            self.assertEqual(p.wait(timeout=10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_too_large_a_batch_is_an_error_line_and_exit(self):
        p = start_fake()
        try:
            p.stdout.readline()
            p.stdin.write("q 1 5\n")
            p.stdin.flush()
            line = p.stdout.readline()
            self.assertTrue(line.startswith("e 1 batch 5 is larger"), line)
            self.assertNotEqual(p.wait(timeout=10), 0)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()

    def test_end_of_input_ends_the_worker(self):
        p = start_fake()
        p.stdout.readline()
        p.stdin.close()
        self.assertEqual(p.wait(timeout=10), 0)

    def test_arguments(self):
        a = worker.parse_args(["--model", "bert-base", "--fake", "--fake-latencies", "8:3.5,1:1"])
        self.assertEqual(a.batches, [1, 8])
        self.assertEqual(a.fake_latencies, {1: 1.0, 8: 3.5})
        for bad in (["--model", "m", "--fake"], ["--model", "m"], ["--model", "m", "--batches", "0"],
                    ["--model", "m", "--fake", "--fake-latencies", "1:x"]):
            with self.assertRaises(SystemExit, msg=bad):
                with open(os.devnull, "w") as null:
                    old, sys.stderr = sys.stderr, null
                    try:
                        worker.parse_args(bad)
                    finally:
                        sys.stderr = old

    def test_pick_batch(self):
        self.assertEqual(worker.pick_batch([1, 4, 8], 1), 1)
        self.assertEqual(worker.pick_batch([1, 4, 8], 5), 8)
        self.assertIsNone(worker.pick_batch([1, 4, 8], 9))


class MpsHelpersTest(unittest.TestCase):
    def test_thread_percentages_of_h200_profiles(self):
        got = {p["profile"]: measure_mps.thread_percentage(p["mig_sms"], 132) for p in measure.profile_table("H200-141GB")}
        self.assertEqual(got, {"1g.18gb": 13, "1g.35gb": 20, "2g.35gb": 25, "3g.71gb": 46, "4g.71gb": 49,
                               "7g.141gb": 100})

    def test_default_layouts_are_known_profiles(self):
        for gpu, layouts in measure.DEFAULT_LOAD_LAYOUTS.items():
            names = {p["profile"] for p in measure.profile_table(gpu)}
            covered = {p for lay in layouts for p in lay}
            self.assertTrue(covered <= names, gpu)
            self.assertEqual(names - covered, {measure.profile_table(gpu)[-1]["profile"]}, gpu)  # all but 7g

    def test_loaded_rows_get_the_extra_column(self):
        pts = [{"status": "ok", "model": "m", "profile": "1g.18gb", "batch": 1, "p50_ms": 1.0, "p99_ms": 1.2,
                "neighbour_load": 0.0},
               {"status": "ok", "model": "m", "profile": "1g.18gb", "batch": 1, "p50_ms": 1.3, "p99_ms": 1.9,
                "neighbour_load": 0.6}]
        rows = measure.rows_from_points(pts, "H200-141GB", "mps")
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "m.csv")
            measure.write_csv(path, rows)
            with open(path) as f:
                got = list(csv.DictReader(f))
        self.assertEqual(list(got[0].keys()), list(measure.CSV_HEADER_MPS))
        self.assertEqual([r["neighbour_load"] for r in got], ["0", "0.6"])
        self.assertEqual([r["method"] for r in got], ["mps", "mps"])


if __name__ == "__main__":
    unittest.main()
