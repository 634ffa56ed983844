//! `migopt serve` end to end on the CPU: the real front end, real worker processes
//! (`profiles/worker.py --fake`, which sleeps for the profiled latency), the H200 profiles.
//! Checks that served queries are complete and consistent, that the served latencies match
//! the simulator's prediction of the same trace (both schedulers kinds: dispatch at arrival
//! and FIFS's central queue), and that a worker that dies or hangs ends the run with an error
//! naming its instance and leaves no process behind.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn migopt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migopt"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A folder with the plan of papers/sim-to-real, a short trace, and a private copy of the
/// worker (so the test can tell its own worker processes apart from anyone else's).
/// One serve test at a time: each runs four worker processes, and timing on a 2-core CI
/// machine is what the tests compare.
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// papers/sim-to-real's scenario with its isolated profile rows only (the fake workers sleep
/// for the isolated medians, and without neighbour-load rows the simulator's interference
/// model is off), written into `d`.
fn isolated_scenario(d: &Path) -> PathBuf {
    for m in ["resnet50", "bert-base"] {
        let text =
            std::fs::read_to_string(root().join(format!("profiles/h200-141gb/{m}.csv"))).unwrap();
        let mut out = String::new();
        for (i, line) in text.lines().enumerate() {
            let (row, load) = line.rsplit_once(',').unwrap();
            if i == 0 || load == "0" {
                out += row;
                out.push('\n');
            }
        }
        std::fs::write(d.join(format!("{m}.csv")), out).unwrap();
    }
    let scen = std::fs::read_to_string(root().join("papers/sim-to-real/scenario.toml"))
        .unwrap()
        .replace("../../profiles/h200-141gb/", "");
    std::fs::write(d.join("scenario.toml"), scen).unwrap();
    d.join("scenario.toml")
}

/// Profiled median of (model, profile, batch) in the isolated copies.
fn median(d: &Path, model: &str, profile: &str, batch: f64) -> f64 {
    let text = std::fs::read_to_string(d.join(format!("{model}.csv"))).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').collect::<Vec<_>>())
        .find(|f| f[2] == profile && f[3].parse::<f64>().unwrap() == batch)
        .map(|f| f[4].parse().unwrap())
        .unwrap()
}

fn setup(name: &str, rate: f64, secs: f64) -> tempfile::TempDir {
    let d = tempfile::Builder::new().prefix(name).tempdir().unwrap();
    let scen = isolated_scenario(d.path());
    let o = migopt()
        .args(["plan", scen.to_str().unwrap(), "--out"])
        .arg(d.path().join("plan.json"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for f in ["worker.py", "measure.py"] {
        std::fs::copy(root().join("profiles").join(f), d.path().join(f)).unwrap();
    }
    // Poisson arrivals, 60% ResNet-50 and 40% BERT, the scenario's batch sizes in turn.
    let mut t = String::from("arrival_ms,model,batch\n");
    let n = (rate * secs) as usize;
    let sizes = [1, 2, 4, 8, 1, 2, 16, 4, 1, 32];
    for k in 0..n {
        let at = k as f64 * 1000.0 / rate + ((k * 7919) % 13) as f64 * 0.1;
        let m = if k % 5 < 3 { "resnet50" } else { "bert-base" };
        t += &format!("{at:.3},{m},{}\n", sizes[k % sizes.len()]);
    }
    std::fs::write(d.path().join("trace.csv"), t).unwrap();
    d
}

fn serve(d: &Path, extra: &[&str]) -> Output {
    let scen = d.join("scenario.toml");
    migopt()
        .current_dir(d)
        .args(["serve", "plan.json", "--scenario", scen.to_str().unwrap()])
        .args([
            "--trace",
            "trace.csv",
            "--placement",
            "fake",
            "--worker",
            "worker.py",
        ])
        .args(extra)
        .output()
        .unwrap()
}

/// Processes whose command line mentions `dir` (our workers), from /proc.
fn processes_mentioning(dir: &Path) -> Vec<String> {
    let needle = dir.to_string_lossy().into_owned();
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        if let Ok(c) = std::fs::read(e.path().join("cmdline")) {
            let c = String::from_utf8_lossy(&c).replace('\0', " ");
            if c.contains(&needle) {
                out.push(c);
            }
        }
    }
    out
}

#[test]
fn served_latencies_match_the_simulated_ones() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    for sched in ["elsa", "fifs"] {
        let d = setup("migopt-serve-ok", 250.0, 2.0);
        let o = serve(
            d.path(),
            &["--scheduler", sched, "--out", "m.csv", "--warmup", "0"],
        );
        let out = String::from_utf8_lossy(&o.stdout).into_owned();
        assert!(
            o.status.success(),
            "{}\n{out}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(out.starts_with("served sim-to-real"), "{out}");
        let served = Served::read(d.path());
        assert_eq!(served.rows.len(), 500);
        check_records(&served.rows);
        check_sidecar(d.path(), sched);
        // The simulator's prediction of the same trace: the fake workers sleep for exactly
        // the profiled medians, so only the front end's and the workers' overhead and the
        // OS separate the two. Means, because at this load latencies take few distinct
        // values and a percentile can sit on the edge between two of them.
        let sim = simulate_trace(d.path(), sched);
        if sched == "fifs" {
            check_fifs_rule(d.path(), &served);
        } else {
            check_means_match(d.path(), &served, &sim, sched, &out);
        }
        assert!(processes_mentioning(d.path()).is_empty());
    }
}

/// The records of a served run (`m.csv`): every column but the model as numbers, and the
/// models apart.
struct Served {
    /// Per query: query arrival batch instance dispatch start finish service ran.
    rows: Vec<Vec<f64>>,
    /// Per query: its model.
    models: Vec<String>,
}

impl Served {
    /// Reads `m.csv` in `d`.
    fn read(d: &Path) -> Self {
        let recs = std::fs::read_to_string(d.join("m.csv")).unwrap();
        let rows = recs
            .lines()
            .skip(1)
            .map(|l| {
                l.split(',')
                    .enumerate()
                    .filter(|(i, _)| *i != 2)
                    .map(|(_, x)| x.parse().unwrap())
                    .collect()
            })
            .collect();
        let models = recs
            .lines()
            .skip(1)
            .map(|l| l.split(',').nth(2).unwrap().to_string())
            .collect();
        Served { rows, models }
    }
}

/// Every record is consistent: a known instance, the batch run in full, and dispatch,
/// start and finish in order with the service time between start and finish.
fn check_records(rows: &[Vec<f64>]) {
    for r in rows {
        // query arrival batch instance dispatch start finish service ran
        let (arr, b, inst, disp, start, fin, svc, ran) =
            (r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8]);
        assert!(inst < 4.0 && ran >= b, "{r:?}");
        // The worker stamps `start` on its own clock read; on a loaded machine the front
        // end can record the dispatch a few ms after the worker already began, so allow
        // a scheduling-noise tolerance rather than a sub-millisecond one.
        assert!(
            disp >= arr - 5.0 && fin > disp && start >= disp - 5.0,
            "{r:?}"
        );
        assert!(svc > 0.5 && (fin - start - svc).abs() < 1e-3, "{r:?}");
    }
}

/// The run's sidecar (`m.csv.json`) names the scheduler and its four workers.
fn check_sidecar(d: &Path, sched: &str) {
    let sidecar: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(d.join("m.csv.json")).unwrap()).unwrap();
    assert_eq!(sidecar["scheduler"], sched);
    assert_eq!(sidecar["workers"].as_array().unwrap().len(), 4);
}

/// The simulator's report (JSON) of the trace in `d` under `sched`, one replication, no
/// warm-up.
fn simulate_trace(d: &Path, sched: &str) -> serde_json::Value {
    let scen = d.join("scenario.toml");
    let sim = migopt()
        .current_dir(d)
        .args([
            "simulate",
            "plan.json",
            "--scenario",
            scen.to_str().unwrap(),
            "--json",
        ])
        .args([
            "--trace",
            "trace.csv",
            "--scheduler",
            sched,
            "--warmup",
            "0",
            "--replications",
            "1",
        ])
        .output()
        .unwrap();
    serde_json::from_slice(&sim.stdout).unwrap()
}

/// The plan served in `d` (`plan.json`).
fn read_plan(d: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(d.join("plan.json")).unwrap()).unwrap()
}

/// FIFS's choices hinge on which instance went idle first, which a few microseconds of
/// overhead (or a busy CI machine) can flip: check its rule instead. Within a (model,
/// batch) class queries start in arrival order, and none waits long while an instance able
/// to run it stays idle.
fn check_fifs_rule(d: &Path, served: &Served) {
    let plan = read_plan(d);
    let insts: Vec<(String, f64)> = plan["gpus"][0]["layout"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            (
                a["model"].as_str().unwrap().to_string(),
                a["batch"].as_f64().unwrap(),
            )
        })
        .collect();
    let (rows, models) = (&served.rows, &served.models);
    for (q, r) in rows.iter().enumerate() {
        for (p, o) in rows.iter().enumerate().take(q) {
            if models[p] == models[q] && o[2] == r[2] {
                assert!(
                    o[4] <= r[4],
                    "query {q} was sent before the older query {p} of its class"
                );
            }
        }
        let slack = 20.0;
        if r[4] - r[1] < slack {
            continue;
        }
        for (i, (m, cap)) in insts.iter().enumerate() {
            if *m != models[q] || r[2] > *cap {
                continue;
            }
            let busy = rows
                .iter()
                .any(|o| o[3] as usize == i && o[4] <= r[1] + slack && o[6] >= r[1]);
            assert!(
                busy,
                "query {q} waited {:.2} ms while instance {i} stayed idle",
                r[4] - r[1]
            );
        }
    }
}

/// Each model's mean served latency is within 15% (plus 0.3 ms and twice the machine's
/// own overhead) of the simulator's mean for the same trace.
fn check_means_match(d: &Path, served: &Served, sim: &serde_json::Value, sched: &str, out: &str) {
    let plan = read_plan(d);
    let profile_of = |i: f64| {
        plan["gpus"][0]["layout"][i as usize]["profile"]
            .as_str()
            .unwrap()
            .to_string()
    };
    for (k, m) in ["resnet50", "bert-base"].iter().enumerate() {
        let mine: Vec<&Vec<f64>> = served
            .rows
            .iter()
            .zip(&served.models)
            .filter(|(_, model)| model.as_str() == *m)
            .map(|(r, _)| r)
            .collect();
        let mean = |f: &dyn Fn(&Vec<f64>) -> f64| {
            mine.iter().map(|r| f(r)).sum::<f64>() / mine.len() as f64
        };
        let served = mean(&|r| r[6] - r[1]);
        // What the machine added that the simulator cannot know: the front end's lag
        // and pipes, and the fake worker oversleeping (a loaded CI machine).
        let extra = mean(&|r| {
            (r[4] - r[1]) + (r[6] - r[4] - r[7]) + (r[7] - median(d, m, &profile_of(r[3]), r[2]))
        });
        let predicted = sim["models"][k]["latency_ms"]["mean"]["mean"]
            .as_f64()
            .unwrap();
        assert_eq!(sim["models"][k]["model"], *m);
        assert!(
            (served - predicted).abs() <= 0.15 * predicted + 0.3 + 2.0 * extra.max(0.0),
            "{sched} {m}: mean latency served {served:.3} ms, simulated {predicted:.3} ms, machine overhead {extra:.3} ms\n{out}"
        );
    }
}

fn assert_fails_cleanly(o: &Output, d: &Path, instance: &str, what: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(instance) && err.contains(what), "{err}");
    assert!(!d.join("m.csv").exists(), "no partial output");
    // Every worker is gone once migopt has returned.
    let left = processes_mentioning(d);
    assert!(left.is_empty(), "orphans: {left:?}");
}

#[test]
fn a_dead_worker_is_named_and_nothing_is_left_behind() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = setup("migopt-serve-dead", 200.0, 1.0);
    let o = serve(
        d.path(),
        &["--out", "m.csv", "--worker-fault", "1:--fake-die-after 3"],
    );
    assert_fails_cleanly(
        &o,
        d.path(),
        "worker of GPU 0 1g.18gb@1 bert-base",
        "exited",
    );
}

#[test]
fn a_hung_worker_is_named_and_nothing_is_left_behind() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = setup("migopt-serve-hung", 200.0, 1.0);
    let o = serve(
        d.path(),
        &[
            "--out",
            "m.csv",
            "--hang-timeout-ms",
            "300",
            "--worker-fault",
            "0:--fake-hang-after 2",
        ],
    );
    assert_fails_cleanly(&o, d.path(), "worker of GPU 0 1g.18gb@0 resnet50", "hangs");
}

/// `migopt compare` of a run written with `--out-dir`, from anywhere: the sidecar names the
/// plan so that it resolves against the record file, not against the folder `serve` ran in
/// (another folder may hold another `plan.json`, which must not be taken).
#[test]
fn compare_finds_the_served_plan_from_any_folder() {
    let _one = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let d = setup("migopt-serve-compare", 200.0, 1.0);
    let o = serve(d.path(), &["--out-dir", "runs", "--warmup", "0"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let run = d.path().join("runs/trace.elsa.csv");
    // A folder holding another plan under the same name: the default 8x H100 one.
    let other = tempfile::tempdir().unwrap();
    let o = migopt()
        .current_dir(other.path())
        .args(["plan", "--out", "plan.json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for cwd in [other.path(), &root()] {
        let o = migopt()
            .current_dir(cwd)
            .arg("compare")
            .arg(&run)
            .output()
            .unwrap();
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(
            o.status.success(),
            "from {}: {}",
            cwd.display(),
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            out.starts_with("trace under elsa served under elsa"),
            "{out}"
        );
        assert!(out.contains("GPU 0 3g.71gb@4 bert-base"), "{out}");
    }
    // With a calibration run (here the run itself), as JSON: the measured report and the
    // one prediction of profiles without neighbour-load rows.
    let o = migopt()
        .arg("compare")
        .arg(&run)
        .arg("--calibration")
        .arg(&run)
        .arg("--json")
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["measured"]["scheduler"], "elsa-start");
    let names: Vec<&str> = v["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[0].as_str().unwrap())
        .collect();
    assert_eq!(names, ["profiles"]);
}
