//! End-to-end tests of the `migopt` binary: every command on real inputs, and the corpus of
//! malformed files under `tests/corpus/`, each with the exact error it must produce.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn migopt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_migopt"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn run(args: &[&str], dir: &Path) -> Output {
    migopt()
        .args(args)
        .current_dir(dir)
        .output()
        .expect("binary runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// The ParvaGPU data set vendored in the repository.
fn parvagpu_dir() -> PathBuf {
    root().join("profiles/parvagpu-a100-80gb")
}

/// The ParvaGPU scenarios imported into `dir/pv` (`migopt import parvagpu`): that folder.
fn import_parvagpu(dir: &Path) -> PathBuf {
    let pv = dir.join("pv");
    let src = parvagpu_dir();
    let args = ["import", "parvagpu", src.to_str().unwrap(), "--out"];
    let o = run(&[&args[..], &[pv.to_str().unwrap()]].concat(), &root());
    assert!(o.status.success(), "{}", stderr(&o));
    pv
}

/// The files of `dir` with extension `ext` that `keep` accepts, sorted.
fn files_of(dir: &Path, ext: &str, keep: impl Fn(&Path) -> bool) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext) && keep(p))
        .collect();
    files.sort();
    files
}

/// Asserts that the run `o` on the corpus file `f` was rejected as bad input: exit 2, the
/// exact message of `<f>.err`, no standard output.
fn assert_rejected(f: &Path, o: &Output) {
    let name = f.file_name().unwrap().to_str().unwrap();
    let want = std::fs::read_to_string(f.with_extension("err")).unwrap();
    assert_eq!(o.status.code(), Some(2), "{name}: {}", stderr(o));
    assert_eq!(stderr(o), want, "{name}");
    assert_eq!(stdout(o), "", "{name} printed output despite bad input");
}

/// Runs `args + file` for every file of the corpus folder with extension `ext` (except
/// `ok.*`), asserting exit code 2, no output, and the exact message in `<name>.err`.
fn corpus(folder: &str, ext: &str, args: &[&str]) -> usize {
    let dir = root().join("tests/corpus").join(folder);
    let files = files_of(&dir, ext, |p| {
        !p.file_stem().unwrap().to_string_lossy().starts_with("ok")
    });
    for f in &files {
        let mut a = args.to_vec();
        a.push(f.file_name().unwrap().to_str().unwrap());
        assert_rejected(f, &run(&a, &dir));
    }
    files.len()
}

/// Every file under `dir`, recursively, with its length and modification time.
fn snapshot(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            let m = std::fs::metadata(&p).unwrap();
            if m.is_dir() {
                stack.push(p.clone());
            }
            out.push((p, m.len(), m.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// Runs each command line of `tests/corpus/args/*.args` in that folder, asserting exit 2,
/// the exact message of `<name>.err`, no standard output, and that nothing in the folder
/// was created or changed (outputs are all or nothing).
fn corpus_args() -> usize {
    let dir = root().join("tests/corpus/args");
    let files = files_of(&dir, "args", |_| true);
    for f in &files {
        let line = std::fs::read_to_string(f).unwrap();
        let args: Vec<&str> = line.split_whitespace().collect();
        let before = snapshot(&dir);
        let o = run(&args, &dir);
        let after = snapshot(&dir);
        assert_rejected(f, &o);
        let name = f.file_name().unwrap().to_str().unwrap();
        assert_eq!(before, after, "{name} wrote into {}", dir.display());
    }
    files.len()
}

/// Asserts that `migopt <command> check <file>` accepts a file of `tests/corpus/<folder>`.
fn assert_accepted(command: &str, folder: &str, file: &str) {
    let o = run(
        &[command, "check", file],
        &root().join("tests/corpus").join(folder),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn malformed_profile_csvs_get_their_exact_error() {
    assert!(corpus("csv", "csv", &["profile", "check"]) >= 15);
}

#[test]
fn malformed_scenarios_get_their_exact_error() {
    assert!(corpus("toml", "toml", &["scenario", "check"]) >= 15);
    assert_accepted("scenario", "toml", "ok.toml");
}

#[test]
fn layouts_counts_match_nvidia_rules() {
    for (gpu, extra, want) in [
        ("A100-40GB", None, 19),
        ("A100-80GB", None, 19),
        ("H100-80GB", None, 19),
        ("H200-141GB", None, 19),
        ("A100-40GB", Some("--pre-r510"), 18),
        ("H100-80GB", Some("--pre-r510"), 18),
        ("H200-141GB", Some("--pre-r510"), 18),
        ("A30-24GB", None, 5),
    ] {
        let mut args = vec!["layouts", "--gpu", gpu, "--json"];
        args.extend(extra);
        let o = run(&args, &root());
        assert!(o.status.success(), "{}", stderr(&o));
        let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        assert_eq!(v["count"], want, "{gpu} {extra:?}");
        assert_eq!(v["layouts"].as_array().unwrap().len(), want);
    }
    let o = run(
        &["layouts", "--gpu", "H100-80GB", "--all-profiles", "--json"],
        &root(),
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: String = v["layouts"].to_string();
    assert!(names.contains("1g.20gb") && names.contains("1g.10gb+me"));
    let o = run(&["layouts", "--gpu", "H100-80GB"], &root());
    assert!(stdout(&o).contains("[4444|22|1|.]"), "{}", stdout(&o));
    let o = run(&["layouts", "--gpu", "V100"], &root());
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("unknown GPU `V100`"));
}

#[test]
fn profile_check_passes_on_the_shipped_profiles() {
    let files = ["resnet50", "mobilenetv2", "bert-base", "vit-b16"]
        .map(|m| format!("profiles/h100-80gb/{m}.csv"));
    let mut args = vec!["profile", "check", "--json"];
    args.extend(files.iter().map(|s| s.as_str()));
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = v["summaries"].as_array().unwrap();
    assert_eq!(s.len(), 24);
    assert!(s
        .iter()
        .all(|r| r["knee_batch"].as_u64().unwrap() >= 1 && r["method"] == "green-context"));
    let o = run(&["profile", "check", &files[0]], &root());
    assert!(
        stdout(&o).contains("knee") && stdout(&o).contains("1 file(s) valid: 6 curves."),
        "{}",
        stdout(&o)
    );
}

#[test]
fn import_parvagpu_writes_profiles_and_scenarios() {
    let src = parvagpu_dir();
    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("pv");
    let o = run(
        &[
            "import",
            "parvagpu",
            src.to_str().unwrap(),
            "--out",
            dest.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("imported 11 models"));
    for i in 1..=6 {
        let s = dest.join(format!("parvagpu-s{i}.toml"));
        let c = run(&["scenario", "check", s.to_str().unwrap()], &root());
        assert!(c.status.success(), "{}", stderr(&c));
    }
    let c = run(
        &["profile", "check", dest.join("bert.csv").to_str().unwrap()],
        &root(),
    );
    assert!(c.status.success());
}

#[test]
fn import_of_a_broken_data_set_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(src.join("prof_data")).unwrap();
    std::fs::create_dir_all(src.join("SLO")).unwrap();
    std::fs::write(
        src.join("prof_data/m.csv"),
        "Mig instance,Batch size,Workload Number,Throughput,Latency\n1,1,1,100,0.01\n1,2,1,100,x\n",
    )
    .unwrap();
    std::fs::write(src.join("SLO/SLO_req_rate.csv"), "10\n").unwrap();
    std::fs::write(src.join("SLO/SLO_latency.csv"), "100\n").unwrap();
    let dest = tmp.path().join("out");
    let o = run(&["import", "parvagpu", "src", "--out", "out"], tmp.path());
    assert_eq!(o.status.code(), Some(2));
    assert_eq!(
        stderr(&o),
        "migopt: error: src/prof_data/m.csv:3: field `Latency`: `x` is not a non-negative number\n"
    );
    assert!(!dest.exists(), "output written despite bad input");
}

#[test]
fn plan_rejects_bad_scenarios_with_the_same_messages() {
    // The planner reads scenarios through the same loader as `scenario check`.
    corpus("toml", "toml", &["plan"]);
    // Scenarios that parse but cannot be planned say why, in user terms.
    assert_eq!(corpus("plan", "toml", &["plan", "--cap-gpus"]), 4);
    // So do the commands that plan a scenario first, and gap.
    for command in ["simulate", "capacity", "gap"] {
        assert_eq!(corpus("plan", "toml", &[command, "--cap-gpus"]), 4);
    }
}

fn tmp_plan(dir: &Path) -> PathBuf {
    let plan = dir.join("plan.json");
    let o = run(&["plan", "--out", plan.to_str().unwrap()], &root());
    assert!(o.status.success(), "{}", stderr(&o));
    plan
}

#[test]
fn plan_default_is_proven_optimal_and_exports() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&["plan", "--json"], &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["status"], "optimal");
    for f in ["objective", "bound", "gap", "lp_bound", "solve_seconds"] {
        assert!(v[f].is_number(), "{f}: {}", v[f]);
    }
    assert!(v["bound"].as_f64().unwrap() + 1e-6 >= v["objective"].as_f64().unwrap());
    assert!(v["lp_bound"].as_f64().unwrap() + 1e-6 >= v["bound"].as_f64().unwrap());
    let gpus = v["gpus"].as_array().unwrap();
    assert_eq!(gpus.len(), 8);
    for a in gpus.iter().flat_map(|g| g["layout"].as_array().unwrap()) {
        for f in ["profile", "start", "model", "batch", "procs"] {
            assert!(!a[f].is_null(), "{f} missing in {a}");
        }
    }
    let yaml = tmp.path().join("mig.yaml");
    let plan = tmp.path().join("p.json");
    let o = run(
        &[
            "plan",
            "--solver",
            "paris",
            "--out",
            plan.to_str().unwrap(),
            "--mig-parted",
            yaml.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("status      heuristic"));
    let y = std::fs::read_to_string(&yaml).unwrap();
    for want in [
        "version: v1",
        "mig-configs:",
        "migopt-plan:",
        "devices: [",
        "mig-enabled: true",
        "mig-devices:",
    ] {
        assert!(y.contains(want), "{want} missing:\n{y}");
    }
    let p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    assert_eq!(p["solver"], "paris");
    // Both encodings give the same optimum on the default scenario.
    let o = run(&["plan", "--encoding", "placements", "--json"], &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let w: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let (a, b) = (
        v["objective"].as_f64().unwrap(),
        w["objective"].as_f64().unwrap(),
    );
    assert!((a - b).abs() <= 1e-6 * a, "{a} vs {b}");
}

#[test]
fn gap_compares_every_heuristic_with_the_milp() {
    let o = run(&["gap", "--json"], &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    let solvers: Vec<&str> = rows.iter().map(|r| r["solver"].as_str().unwrap()).collect();
    for s in ["milp", "paris", "parvagpu", "homogeneous-3g"] {
        assert!(solvers.contains(&s), "{s} missing: {solvers:?}");
    }
    for r in rows.iter().filter(|r| r["objective"].is_number()) {
        assert!(
            r["gap_pct"].as_f64().unwrap() >= -1e-6,
            "a heuristic beat the MILP: {r}"
        );
    }
}

#[test]
fn simulate_and_capacity_run_a_plan_file() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp_plan(tmp.path());
    let p = plan.to_str().unwrap();
    let args = ["--queries", "20000", "--replications", "2", "--json"];
    let mut a = vec!["simulate", p, "--scheduler", "fifs"];
    a.extend(args);
    let o = run(&a, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["scheduler"], "fifs");
    assert_eq!(v["models"].as_array().unwrap().len(), 2);
    assert!(
        v["models"][0]["latency_ms"]["p99"]["mean"]
            .as_f64()
            .unwrap()
            > 0.0
    );
    // Same seed, same result, whatever the thread count.
    let mut a1 = vec!["simulate", p, "--threads", "1"];
    a1.extend(args);
    let mut a2 = vec!["simulate", p, "--threads", "2"];
    a2.extend(args);
    assert_eq!(run(&a1, &root()).stdout, run(&a2, &root()).stdout);
    let mut a = vec!["capacity", p];
    a.extend(args);
    let o = run(&a, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["capacity_qps"]["mean"].as_f64().unwrap() > 0.0);
    assert!(v["fluid_capacity_qps"].as_f64().unwrap() > 0.0);
    // A scenario is planned first, and says so.
    let o = run(
        &[
            "simulate",
            "profiles/h100-80gb/default.toml",
            "--queries",
            "5000",
            "--replications",
            "2",
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).starts_with("planned profiles/h100-80gb/default.toml first with the MILP"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn simulate_rejects_bad_input() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp_plan(tmp.path());
    let p = plan.to_str().unwrap();
    let expect = |args: &[&str], want: &str| {
        let o = run(args, &root());
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(want), "{args:?}: {}", stderr(&o));
        assert_eq!(stdout(&o), "");
    };
    expect(
        &["simulate", p, "--rate", "0"],
        "--rate 0 must be a positive number of queries per second",
    );
    let text = std::fs::read_to_string(&plan).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["gpus"][0]["layout"][0]["start"] = serde_json::json!(7);
    let bad = tmp.path().join("bad-start.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    expect(
        &["simulate", bad.to_str().unwrap()],
        ":1: field `gpus[0].layout`: invalid MIG placement on H100-80GB: 1g.10gb cannot start at memory slot 7",
    );
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    v["gpus"][0]["layout"][0]["model"] = serde_json::json!("resnet18");
    let bad = tmp.path().join("bad-model.json");
    std::fs::write(&bad, v.to_string()).unwrap();
    expect(&["simulate", bad.to_str().unwrap()], "resnet18");
    let trace = tmp.path().join("trace.csv");
    std::fs::write(
        &trace,
        "arrival_ms,model,batch\n0.0,resnet50,4\n5.0,bert-base,2\n3.0,resnet50,1\n",
    )
    .unwrap();
    expect(
        &["simulate", p, "--trace", trace.to_str().unwrap()],
        "trace.csv:4",
    );
    let junk = tmp.path().join("junk.json");
    std::fs::write(&junk, "{\"not\": \"a plan\"}").unwrap();
    expect(&["simulate", junk.to_str().unwrap()], "not a migopt plan");
}

#[test]
fn reproduce_quick_writes_results() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pe");
    let o = run(
        &[
            "reproduce",
            "papers/paris-elsa",
            "--quick",
            "--out",
            out.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(out.join("RESULTS.md").is_file());
    assert!(out.join("results/capacity.csv").is_file());
    assert!(
        stdout(&o).contains("[holds] MILP fluid capacity ≥ PARIS fluid capacity"),
        "{}",
        stdout(&o)
    );
    let o = run(&["reproduce", "papers/nope"], &root());
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn gap_sweeps_gpu_counts_and_sla_multipliers() {
    let dir = root().join("tests/corpus/toml");
    let o = run(
        &[
            "gap",
            "ok.toml",
            "--sweep",
            "--sla-multipliers",
            "0.5,1",
            "--json",
        ],
        &dir,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rows = v.as_array().unwrap();
    // ok.toml has 4 GPUs: counts 1..4 x 2 multipliers, each with the MILP row first.
    let milp: Vec<(u64, f64)> = rows
        .iter()
        .filter(|r| r["solver"] == "milp")
        .map(|r| {
            (
                r["gpus"].as_u64().unwrap(),
                r["sla_multiplier"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        milp,
        [
            (1, 0.5),
            (1, 1.0),
            (2, 0.5),
            (2, 1.0),
            (3, 0.5),
            (3, 1.0),
            (4, 0.5),
            (4, 1.0)
        ]
    );
    // More GPUs never carry less load.
    let at = |n: u64| {
        rows.iter()
            .find(|r| r["solver"] == "milp" && r["gpus"] == n && r["sla_multiplier"] == 1.0)
            .unwrap()["objective"]
            .as_f64()
            .unwrap()
    };
    assert!(at(4) >= at(3) && at(3) >= at(2) && at(2) >= at(1));
}

#[test]
fn malformed_plans_get_their_exact_error() {
    assert!(corpus("plan", "json", &["simulate", "--queries", "1000"]) >= 15);
    let dir = root().join("tests/corpus/plan");
    for ok in ["ok-plan.json", "ok-bom.json"] {
        let o = run(
            &[
                "simulate",
                ok,
                "--queries",
                "2000",
                "--replications",
                "2",
                "--json",
            ],
            &dir,
        );
        assert!(o.status.success(), "{ok}: {}", stderr(&o));
    }
}

#[test]
fn malformed_traces_get_their_exact_error() {
    let args = ["simulate", "ok-plan.json", "--queries", "1000", "--trace"];
    assert!(corpus("trace", "csv", &args) >= 8);
    let mut a = args.to_vec();
    a.push("ok-bom-crlf.csv");
    let o = run(&a, &root().join("tests/corpus/trace"));
    assert!(o.status.success(), "{}", stderr(&o));
}

/// Asserts that `args` (run in `dir`) is refused as bad input, exit 2, no output, with a
/// message that names `file` and the cap in MiB of `what`.
fn assert_too_large(args: &[&str], dir: &Path, file: &Path, mib: u64, what: &str) {
    let o = run(args, dir);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert_eq!(stdout(&o), "", "{args:?}");
    let want = format!(
        "migopt: error: {}: larger than {mib} MiB, the most migopt reads from {what} (see README, Limits)\n",
        file.display()
    );
    assert_eq!(stderr(&o), want);
}

#[test]
fn files_beyond_their_cap_are_refused_before_they_are_read() {
    // Sparse files one byte over the cap: refused by their length, nothing allocated.
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("huge-trace.csv");
    std::fs::File::create(&trace)
        .unwrap()
        .set_len((4096 << 20) + 1)
        .unwrap();
    let plan = root().join("tests/corpus/args/ok-plan.json");
    let args = [
        "simulate",
        plan.to_str().unwrap(),
        "--trace",
        trace.to_str().unwrap(),
    ];
    assert_too_large(&args, tmp.path(), &trace, 4096, "a trace");
    let big_plan = tmp.path().join("huge-plan.json");
    std::fs::File::create(&big_plan)
        .unwrap()
        .set_len((1024 << 20) + 1)
        .unwrap();
    let args = ["simulate", big_plan.to_str().unwrap()];
    assert_too_large(&args, tmp.path(), &big_plan, 1024, "a plan");
    // A device with no length that never ends: refused once the cap is read (the corpus
    // has the same for `plan` and `replay-day --load`).
    let zero = Path::new("/dev/zero");
    let args = ["profile", "check", "/dev/zero"];
    assert_too_large(&args, tmp.path(), zero, 256, "a profile CSV");
}

#[test]
fn a_time_limit_too_long_for_the_clock_plans_without_a_deadline() {
    // 1e300 s overflowed `Duration::from_secs_f64`: a panic, exit 101.
    let dir = root().join("tests/corpus/args");
    let o = run(&["plan", "bert-only.toml", "--time-limit", "1e300"], &dir);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("status      optimal"), "{}", stdout(&o));
}

/// Asserts that `args`, run in `dir`, is refused because its output `out` is one of its
/// inputs, and that every file of `dir` is left as it was.
fn assert_output_is_input(args: &[&str], dir: &Path, out: &str) {
    let before = snapshot(dir);
    let o = run(args, dir);
    assert_eq!(o.status.code(), Some(2), "{args:?}: {}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!("migopt: error: cannot write {out}: it is an input of this command, which the output would replace\n"),
        "{args:?}"
    );
    assert_eq!(stdout(&o), "", "{args:?}");
    assert_eq!(before, snapshot(dir), "{args:?} changed {}", dir.display());
}

#[test]
fn an_output_that_would_replace_an_input_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let args_dir = root().join("tests/corpus/args");
    let profiles = root().join("profiles").canonicalize().unwrap();
    let scen = std::fs::read_to_string(args_dir.join("bert-only.toml")).unwrap();
    let scen = scen.replace("../../../profiles", profiles.to_str().unwrap());
    std::fs::write(d.join("s.toml"), scen).unwrap();
    std::fs::copy(args_dir.join("ok-plan.json"), d.join("plan.json")).unwrap();
    let load = root().join("papers/reconfiguration/diurnal.csv");
    std::fs::copy(load, d.join("load.csv")).unwrap();
    let trace = root().join("tests/corpus/trace/ok-bom-crlf.csv");
    std::fs::copy(trace, d.join("t.csv")).unwrap();
    std::os::unix::fs::symlink("s.toml", d.join("link.toml")).unwrap();
    assert_output_is_input(&["plan", "s.toml", "--out", "s.toml"], d, "s.toml");
    let a = ["plan", "s.toml", "--mig-parted", "./s.toml"];
    assert_output_is_input(&a, d, "./s.toml");
    assert_output_is_input(&["plan", "s.toml", "--out", "link.toml"], d, "link.toml");
    let a = ["replan", "plan.json", "s.toml", "--out", "plan.json"];
    assert_output_is_input(&a, d, "plan.json");
    let a = [
        "replay-day",
        "s.toml",
        "--load",
        "load.csv",
        "--sim-seconds",
        "0",
    ];
    assert_output_is_input(&[&a[..], &["--out", "load.csv"]].concat(), d, "load.csv");
    let a = [
        "serve",
        "plan.json",
        "--placement",
        "fake",
        "--trace",
        "t.csv",
    ];
    assert_output_is_input(&[&a[..], &["--out", "t.csv"]].concat(), d, "t.csv");
}

/// A profile CSV a scenario names is an input too, under any spelling (`sub/../p.csv`, a
/// link): `plan` and `replan` refuse to write their plan over it.
#[test]
fn an_output_that_would_replace_a_profile_the_scenario_names_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let csv = root().join("profiles/h100-80gb/bert-base.csv");
    std::fs::copy(csv, d.join("p.csv")).unwrap();
    std::fs::create_dir(d.join("sub")).unwrap();
    std::os::unix::fs::symlink("p.csv", d.join("link.csv")).unwrap();
    let scen = std::fs::read_to_string(root().join("tests/corpus/args/bert-only.toml")).unwrap();
    let scen = scen.replace("../../../profiles/h100-80gb/bert-base.csv", "p.csv");
    assert!(scen.contains("\"p.csv\""), "{scen}");
    std::fs::write(d.join("s.toml"), scen).unwrap();
    assert_output_is_input(&["plan", "s.toml", "--out", "p.csv"], d, "p.csv");
    let a = ["plan", "s.toml", "--mig-parted", "sub/../p.csv"];
    assert_output_is_input(&a, d, "sub/../p.csv");
    assert_output_is_input(&["plan", "s.toml", "--out", "link.csv"], d, "link.csv");
    std::fs::copy(
        root().join("tests/corpus/args/ok-plan.json"),
        d.join("plan.json"),
    )
    .unwrap();
    let a = ["replan", "plan.json", "s.toml", "--out", "p.csv"];
    assert_output_is_input(&a, d, "p.csv");
}

/// The files `import` reads are inputs too: an import into the data set's own folder would
/// replace its profiles, and is refused with nothing written.
#[test]
fn an_import_into_its_own_data_set_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    for sub in ["prof_data", "SLO"] {
        std::fs::create_dir_all(d.join("src").join(sub)).unwrap();
        for f in files_of(&parvagpu_dir().join(sub), "csv", |_| true) {
            std::fs::copy(&f, d.join("src").join(sub).join(f.file_name().unwrap())).unwrap();
        }
    }
    let a = ["import", "parvagpu", "src", "--out", "src/prof_data"];
    assert_output_is_input(&a, d, "src/prof_data/bert.csv");
    let a = ["import", "parvagpu", "src", "--out", "src/SLO/../prof_data"];
    assert_output_is_input(&a, d, "src/SLO/../prof_data/bert.csv");
}

/// The objective of `migopt plan --json` with `extra` flags.
fn planned_objective(extra: &[&str]) -> f64 {
    let o = run(&[&["plan", "--json"], extra].concat(), &root());
    assert!(o.status.success(), "{extra:?}: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    v["objective"].as_f64().unwrap()
}

#[test]
fn the_sla_solver_plans_for_its_target_without_the_check_too() {
    // Without --verify, --target and --sla-margin were ignored: every target planned p99.
    let p90 = planned_objective(&["--solver", "sla", "--target", "p90"]);
    let p99 = planned_objective(&["--solver", "sla"]);
    let p999 = planned_objective(&["--solver", "sla", "--target", "p99.9"]);
    assert!(p90 > p99 && p99 > p999, "{p90} {p99} {p999}");
    let loose = planned_objective(&["--solver", "sla", "--sla-margin", "0"]);
    assert!(loose > p99, "{loose} {p99}");
}

#[test]
fn an_output_onto_a_device_or_a_pipe_is_refused_and_left_alone() {
    // `--out /dev/null` renamed a regular file onto the device (as root: the system's), and
    // `--out /dev/stdout` (a link to a pipe) replaced the link. Not /dev/null itself here:
    // a regression would replace the machine's.
    use std::os::unix::fs::FileTypeExt;
    let tmp = tempfile::tempdir().unwrap();
    let fifo = tmp.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let link = tmp.path().join("link-to-fifo");
    std::os::unix::fs::symlink(&fifo, &link).unwrap();
    let dir = root().join("tests/corpus/args");
    for out in [&fifo, &link] {
        let o = run(
            &["plan", "bert-only.toml", "--out", out.to_str().unwrap()],
            &dir,
        );
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        let want = format!(
            "migopt: error: cannot write {}: not a regular file (a device, pipe or socket), which the output would replace\n",
            out.display()
        );
        assert_eq!(stderr(&o), want);
    }
    assert!(std::fs::metadata(&fifo).unwrap().file_type().is_fifo());
    let link_meta = std::fs::symlink_metadata(&link).unwrap();
    assert!(link_meta.file_type().is_symlink());
}

#[test]
fn serve_makes_a_missing_worker_log_folder() {
    // A new --worker-logs folder was an internal error (exit 1) once the workers started.
    let tmp = tempfile::tempdir().unwrap();
    let plan = root().join("tests/corpus/args/ok-plan.json");
    let args = ["serve", plan.to_str().unwrap(), "--placement", "fake"];
    let run_args = ["--rate", "20", "--duration", "0.5", "--out", "served.csv"];
    let logs = ["--worker-logs", "new/logs"];
    let o = run(&[&args[..], &run_args, &logs].concat(), tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    let n = std::fs::read_dir(tmp.path().join("new/logs"))
        .unwrap()
        .count();
    assert_eq!(n, 2, "one log per worker");
    assert!(tmp.path().join("served.csv").is_file());
}

#[test]
fn one_replication_claims_no_interval() {
    let dir = root().join("tests/corpus/args");
    for cmd in ["simulate", "capacity"] {
        let args = [cmd, "ok-plan.json", "--queries", "2000", "--replications"];
        let one = run(&[&args[..], &["1"]].concat(), &dir);
        assert!(one.status.success(), "{cmd}: {}", stderr(&one));
        let text = stdout(&one);
        assert!(
            text.contains("(one replication: no interval)"),
            "{cmd}: {text}"
        );
        assert!(
            !text.contains("95%") && !text.contains('±'),
            "{cmd}: {text}"
        );
        let two = run(&[&args[..], &["2"]].concat(), &dir);
        assert!(two.status.success(), "{cmd}: {}", stderr(&two));
        let text = stdout(&two);
        assert!(
            text.contains("(95% intervals over 2 replications)"),
            "{cmd}: {text}"
        );
        assert!(text.contains('±'), "{cmd}: {text}");
    }
}

/// A replayed trace is the same in every replication unless service times jitter: the text
/// says so instead of claiming a 95% interval of width 0.
#[test]
fn a_deterministic_replay_claims_no_interval() {
    let dir = root().join("tests/corpus/trace");
    let args = ["simulate", "ok-plan.json", "--trace", "ok-bom-crlf.csv"];
    let plain = run(&[&args[..], &["--replications", "3"]].concat(), &dir);
    assert!(plain.status.success(), "{}", stderr(&plain));
    let text = stdout(&plain);
    assert!(
        text.contains("(3 identical replications (a deterministic replay: no --jitter, no random scheduler): no interval)"),
        "{text}"
    );
    assert!(!text.contains("95%"), "{text}");
    // Idle GPUs read 0.0% busy, not -0.0%.
    assert!(!text.contains("-0.0"), "{text}");
    let jitter = run(
        &[&args[..], &["--replications", "3", "--jitter"]].concat(),
        &dir,
    );
    assert!(jitter.status.success(), "{}", stderr(&jitter));
    let text = stdout(&jitter);
    assert!(
        text.contains("(95% intervals over 3 replications)"),
        "{text}"
    );
}

#[test]
fn bad_command_lines_get_their_exact_error_and_write_nothing() {
    assert!(corpus_args() >= 20);
}

#[test]
fn the_corpus_holds_at_least_sixty_malformed_files() {
    let n: usize = ["csv", "toml", "plan", "trace", "args"]
        .iter()
        .map(|d| files_of(&root().join("tests/corpus").join(d), "err", |_| true).len())
        .sum();
    assert!(n >= 60, "{n} malformed inputs with their messages");
}

#[test]
fn bom_and_crlf_inputs_are_accepted() {
    assert_accepted("profile", "csv", "ok-bom-crlf.csv");
    assert_accepted("scenario", "toml", "ok-bom-crlf.toml");
}

/// `plan --verify --json` prints the plan with its check beside it (`migopt_verify::Checked`).
/// Plan files refuse unknown keys, but users save this output and feed it back as a plan:
/// the check's keys are accepted at the top level, so `simulate` and `replan` read it.
#[test]
fn a_saved_verify_report_is_read_back_as_a_plan() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let profiles = root().join("profiles").canonicalize().unwrap();
    let scen = std::fs::read_to_string(root().join("tests/corpus/args/bert-only.toml")).unwrap();
    let scen = scen.replace("../../../profiles", profiles.to_str().unwrap());
    std::fs::write(d.join("s.toml"), scen).unwrap();
    let check = ["--queries", "5000", "--replications", "2"];
    let o = run(
        &[&["plan", "s.toml", "--verify", "--json"], &check[..]].concat(),
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(v["verified"].is_boolean() && v["rounds"].is_array(), "{v}");
    std::fs::write(d.join("checked.json"), &o.stdout).unwrap();
    let sim = run(&[&["simulate", "checked.json"], &check[..]].concat(), d);
    assert!(sim.status.success(), "{}", stderr(&sim));
    let re = run(&["replan", "checked.json", "s.toml", "--json"], d);
    assert!(re.status.success(), "{}", stderr(&re));
    let r: serde_json::Value = serde_json::from_slice(&re.stdout).unwrap();
    assert_eq!(r["target"]["gpu"], "H100-80GB");
}

#[test]
fn a_plan_with_a_million_gpus_is_rejected_before_anything_is_sized_from_it() {
    let tmp = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(root().join("tests/corpus/plan/ok-plan.json")).unwrap();
    let mut v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let gpus = v["gpus"].as_array_mut().unwrap();
    for i in gpus.len()..1_000_000 {
        gpus.push(serde_json::json!({"index": i, "layout": []}));
    }
    let p = tmp.path().join("huge.json");
    std::fs::write(&p, v.to_string()).unwrap();
    let o = run(&["simulate", p.to_str().unwrap()], &root());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(
        stderr(&o),
        format!(
            "migopt: error: {}:1: field `gpus`: 1000000 GPUs, above the limit of 100000\n",
            p.display()
        )
    );
}

/// Runs `args` in `dir` with at most `mib` MiB of address space (`ulimit -v`), killed after
/// `secs` seconds: its exit code (`None`: killed at the deadline), stdout and stderr.
fn run_bounded(args: &[&str], dir: &Path, mib: u64, secs: u64) -> (Option<i32>, String, String) {
    let out = tempfile::tempdir().unwrap();
    let (o, e) = (out.path().join("stdout"), out.path().join("stderr"));
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {}; exec \"$0\" \"$@\"", mib * 1024))
        .arg(env!("CARGO_BIN_EXE_migopt"))
        .args(args)
        .current_dir(dir)
        .stdout(std::fs::File::create(&o).unwrap())
        .stderr(std::fs::File::create(&e).unwrap())
        .spawn()
        .expect("sh runs");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    let code = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status.code();
        }
        if std::time::Instant::now() > deadline {
            child.kill().unwrap();
            child.wait().unwrap();
            break None;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    let read = |p: &Path| String::from_utf8_lossy(&std::fs::read(p).unwrap()).into_owned();
    (code, read(&o), read(&e))
}

#[test]
fn a_plan_of_the_most_gpus_simulates_in_bounded_time_and_memory() {
    // 100,000 GPUs cut in seven (700,000 instances). Before: the simulator and the text
    // report found each GPU's instances by scanning all of them (hours), and every
    // replication kept an 8 KB queue histogram per instance (5.6 GB each, 28 GB for the
    // default 5 replications).
    let tmp = tempfile::tempdir().unwrap();
    let csv = root().join("profiles/h100-80gb/resnet50.csv");
    let scen = format!(
        "[gpu]\nkind = \"H100-80GB\"\ncount = 100000\n\n[[model]]\nname = \"resnet50\"\nprofile = {:?}\nsla_ms = 40.0\nshare = 1.0\n",
        csv.to_str().unwrap()
    );
    std::fs::write(tmp.path().join("s.toml"), scen).unwrap();
    let inst = |s: u32| {
        format!(r#"{{"profile":"1g.10gb","start":{s},"model":"resnet50","batch":1,"procs":1}}"#)
    };
    let layout = (0..7).map(inst).collect::<Vec<_>>().join(",");
    let gpus: Vec<String> = (0..100_000)
        .map(|g| format!(r#"{{"index":{g},"layout":[{layout}]}}"#))
        .collect();
    let plan = format!(
        r#"{{"scenario":"s","scenario_path":"s.toml","gpu":"H100-80GB","objective_kind":"max-load","solver":"hand","status":"heuristic","objective":100.0,"bound":null,"gap":null,"lp_bound":null,"solve_seconds":0.0,"params":{{"max_utilisation":0.8,"sla_fraction":0.5,"slo_factor":0.45,"rate_headroom":1.0}},"gpus":[{}],"routes":[],"model_rates":[]}}"#,
        gpus.join(",")
    );
    std::fs::write(tmp.path().join("p.json"), plan).unwrap();
    let args = ["simulate", "p.json", "--queries", "1000", "--threads", "1"];
    let (code, out, err) = run_bounded(&args, tmp.path(), 4096, 300);
    assert_eq!(code, Some(0), "{err}");
    assert!(out.contains("5 replications x 1000 queries"), "{out:.500}");
    assert!(out.contains("\n99999  "), "the last GPU's row is missing");
}

#[test]
fn every_replication_is_kept_in_a_few_words() {
    // Before: each replication kept its histograms (about 260 KB on this plan) until the
    // report, 5 GB for 20,000 replications and 26 GB for the limit's 100,000.
    let dir = root().join("tests/corpus/args");
    let args = [
        "simulate",
        "ok-plan.json",
        "--replications",
        "20000",
        "--queries",
        "1",
        "--threads",
        "1",
    ];
    let (code, out, err) = run_bounded(&args, &dir, 1024, 300);
    assert_eq!(code, Some(0), "{err}");
    assert!(
        out.contains("(95% intervals over 20000 replications)"),
        "{out}"
    );
}

#[test]
fn failed_outputs_leave_earlier_files_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.json");
    std::fs::write(&a, "keep me").unwrap();
    std::fs::write(tmp.path().join("notadir"), "x").unwrap();
    let o = run(
        &["plan", "--out", "a.json", "--mig-parted", "notadir/x.yaml"],
        tmp.path(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert_eq!(std::fs::read_to_string(&a).unwrap(), "keep me");
    assert_eq!(std::fs::read_dir(tmp.path()).unwrap().count(), 2);
}

/// The text between `<!-- BEGIN {name}` (to the end of that line) and `<!-- END {name} -->`.
fn readme_block(readme: &str, name: &str) -> std::ops::Range<usize> {
    let begin = format!("<!-- BEGIN {name}");
    let b = readme
        .find(&begin)
        .unwrap_or_else(|| panic!("README has no `{begin}`"));
    let start = b + readme[b..].find('\n').unwrap() + 1;
    let end = readme[start..]
        .find(&format!("<!-- END {name} -->"))
        .map(|e| start + e)
        .unwrap_or_else(|| panic!("README has no end marker for {name}"));
    start..end
}

/// Runs `migopt args` (in the repository, 100 columns) and returns its standard output.
fn output_of(args: &[&str], dir: &Path) -> String {
    let o = migopt()
        .args(args)
        .env("COLUMNS", "100")
        .current_dir(dir)
        .output()
        .expect("binary runs");
    assert!(o.status.success(), "{args:?}: {}", stderr(&o));
    stdout(&o)
}

/// The README's default-plan block: `migopt plan` as it prints now.
fn readme_plan_block() -> String {
    format!(
        "```text\n$ migopt plan\n{}```\n",
        output_of(&["plan"], &root())
    )
}

/// Simulation settings of the README's scheduler table (kept small enough for the tests).
const README_SIM: [&str; 6] = ["--queries", "100000", "--replications", "5", "--seed", "0"];
const README_CAP: [&str; 6] = ["--queries", "50000", "--replications", "5", "--seed", "0"];

/// The README's scheduler table: each scheduler on the default MILP plan at its planned
/// load, and its capacity at the SLA.
fn readme_sim_block() -> String {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp_plan(tmp.path());
    let p = plan.to_str().unwrap();
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&plan).unwrap()).unwrap();
    let instances: usize = v["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["layout"].as_array().unwrap().len())
        .sum();
    let pm = |e: &serde_json::Value, d: usize| {
        let mean = e["mean"].as_f64().unwrap();
        match (e["ci_low"].as_f64(), e["ci_high"].as_f64()) {
            (Some(l), Some(h)) => format!("{mean:.d$} ± {:.d$}", (h - l) / 2.0),
            _ => format!("{mean:.d$}"),
        }
    };
    let mut t = format!(
        "The MILP plan of the default scenario (`migopt plan`: 8x H100-80GB, {instances} instances), \
         simulated at its planned load of {:.1} queries/s ({} replications of {} queries, seed 0), \
         and its capacity at the SLA (`migopt capacity`, p99 ≤ 40 ms for both models, {} \
         replications of {} queries); 95% intervals:\n\n",
        v["objective"].as_f64().unwrap(),
        README_SIM[3],
        README_SIM[1],
        README_CAP[3],
        README_CAP[1]
    );
    t += "| scheduler | p99 ResNet-50 ms | p99 BERT-base ms | SLA violations ResNet-50 / BERT % | capacity q/s |\n|---|---|---|---|---|\n";
    for (s, label) in [
        ("elsa", "ELSA"),
        ("fifs", "FIFS"),
        ("jsq", "JSQ"),
        ("rr", "round-robin"),
        ("random", "random"),
    ] {
        let mut a = vec!["simulate", p, "--scheduler", s, "--json"];
        a.extend(README_SIM);
        let r: serde_json::Value = serde_json::from_str(&output_of(&a, &root())).unwrap();
        let mut a = vec!["capacity", p, "--scheduler", s, "--json"];
        a.extend(README_CAP);
        let c: serde_json::Value = serde_json::from_str(&output_of(&a, &root())).unwrap();
        let m = |i: usize| &r["models"][i];
        t += &format!(
            "| {label} | {} | {} | {:.3} / {:.3} | {} |\n",
            pm(&m(0)["latency_ms"]["p99"], 2),
            pm(&m(1)["latency_ms"]["p99"], 2),
            m(0)["sla_violation_rate"]["mean"].as_f64().unwrap() * 100.0,
            m(1)["sla_violation_rate"]["mean"].as_f64().unwrap() * 100.0,
            pm(&c["capacity_qps"], 0),
        );
    }
    t
}

/// Solve times vary from run to run; everything else must match exactly.
fn without_timings(s: &str) -> String {
    s.lines()
        .map(|l| {
            if l.starts_with("solve time") {
                "solve time  (varies)"
            } else {
                l
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The README's default-plan output and scheduler table are the real output of the binary.
/// `MIGOPT_BLESS=1 cargo test --workspace --test e2e readme` rewrites them.
#[test]
fn readme_blocks_are_the_real_output() {
    let path = root().join("README.md");
    let mut readme = std::fs::read_to_string(&path).unwrap();
    let bless = std::env::var("MIGOPT_BLESS").is_ok_and(|v| v == "1");
    for (name, want) in [
        ("migopt plan", readme_plan_block()),
        ("scheduler table", readme_sim_block()),
    ] {
        let r = readme_block(&readme, name);
        if bless {
            readme.replace_range(r, &want);
        } else {
            assert_eq!(
                without_timings(&readme[r]),
                without_timings(&want),
                "README block `{name}` is stale: run MIGOPT_BLESS=1 cargo test --workspace --test e2e readme"
            );
        }
    }
    if bless {
        std::fs::write(&path, readme).unwrap();
    }
}

#[test]
fn plan_and_simulate_tables_fit_the_terminal_width() {
    let tmp = tempfile::tempdir().unwrap();
    let plan = tmp_plan(tmp.path());
    for cols in ["80", "100"] {
        for args in [
            vec!["plan"],
            vec![
                "simulate",
                plan.to_str().unwrap(),
                "--queries",
                "2000",
                "--replications",
                "2",
            ],
        ] {
            let o = migopt()
                .args(&args)
                .env("COLUMNS", cols)
                .current_dir(root())
                .output()
                .unwrap();
            assert!(o.status.success(), "{}", stderr(&o));
            let w: usize = cols.parse().unwrap();
            let out = stdout(&o);
            // The per-GPU table (after its header) fits; other lines are short already.
            let table = &out[out.rfind("GPU  ").unwrap()..];
            for l in table.lines() {
                assert!(l.chars().count() <= w, "{args:?} at {cols} columns: {l}");
            }
        }
    }
}

#[test]
fn import_that_cannot_write_its_last_file_writes_none() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("pv");
    // The 17th output's name is taken by a folder: found before anything is written.
    std::fs::create_dir_all(out.join("parvagpu-s6.toml")).unwrap();
    let o = run(
        &[
            "import",
            "parvagpu",
            parvagpu_dir().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &root(),
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).ends_with("parvagpu-s6.toml: it is a folder\n"),
        "{}",
        stderr(&o)
    );
    assert_eq!(
        std::fs::read_dir(&out).unwrap().count(),
        1,
        "files written despite the failure"
    );
}

/// `--out` into a folder that does not exist yet, named relative to the working folder,
/// creates it (the relative path's last ancestor, "", is the working folder itself).
#[test]
fn outputs_create_missing_relative_folders() {
    let tmp = tempfile::tempdir().unwrap();
    let o = run(&["plan", "--out", "new/deeper/plan.json"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(tmp.path().join("new/deeper/plan.json").is_file());
}

/// `replan --objective sla-capacity` (the SLA-aware max-load re-plan): tier 1 is `plan
/// --solver sla --objective max-load` on the current plan's GPUs, the target promises that
/// λ, and its check simulates it there.
#[test]
fn replan_sla_capacity_keeps_the_most_sla_load_and_checks_it() {
    let out = tempfile::tempdir().unwrap();
    let pv = import_parvagpu(out.path());
    let (s1, s2) = (pv.join("parvagpu-s1.toml"), pv.join("parvagpu-s2.toml"));
    let cur = out.path().join("cur.json");
    let sla_plan = |s: &Path, extra: &[&str]| {
        let mut args = vec!["plan", s.to_str().unwrap(), "--solver", "sla"];
        args.extend(["--objective", "max-load"]);
        args.extend(extra);
        let o = run(&args, &root());
        assert!(o.status.success(), "{}", stderr(&o));
        o
    };
    sla_plan(&s1, &["--out", cur.to_str().unwrap()]);
    let scratch: serde_json::Value =
        serde_json::from_str(&stdout(&sla_plan(&s2, &["--json"]))).unwrap();
    let mut args = vec![
        "replan",
        cur.to_str().unwrap(),
        s2.to_str().unwrap(),
        "--objective",
        "sla-capacity",
        "--spare-gpus",
        "8",
        "--queries",
        "20000",
        "--replications",
        "2",
        "--json",
    ];
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["target"]["solver"], "sla-replan");
    assert_eq!(v["target"]["objective_kind"], "max-load");
    assert_eq!(v["tiers"][0]["name"], "load-max");
    assert!(v["gpus"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| { ["kept", "re-cut", "added", "freed"].contains(&g["fate"].as_str().unwrap()) }));
    // The check simulated the target at its λ; in the first round (no cuts yet) that λ is
    // the from-scratch optimum on the same GPUs.
    let rounds = v["check"]["rounds"].as_array().unwrap();
    assert_eq!(
        rounds.last().unwrap()["objective"],
        v["target"]["objective"]
    );
    assert_eq!(rounds[0]["objective"], scratch["objective"]);
    if rounds.len() == 1 {
        assert_eq!(v["tiers"][0]["objective"], scratch["objective"]);
    }
    assert!(v["check"]["verified"].is_boolean());
    // The same with --solver sla --objective max-load, as text.
    args.retain(|a| *a != "--json");
    args[4] = "max-load";
    args.extend(["--solver", "sla"]);
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(
        text.contains("· max-load ·") && text.contains("load-max"),
        "{text}"
    );
    assert!(text.contains("check       simulated under elsa"), "{text}");
}

#[test]
fn replan_with_the_sla_solver_reports_its_simulated_check() {
    let out = tempfile::tempdir().unwrap();
    let pv = import_parvagpu(out.path());
    let cur = out.path().join("cur.json");
    let s3 = pv.join("parvagpu-s3.toml");
    let o = run(
        &[
            "plan",
            s3.to_str().unwrap(),
            "--solver",
            "sla",
            "--out",
            cur.to_str().unwrap(),
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s4 = pv.join("parvagpu-s4.toml");
    let small = ["--queries", "20000", "--replications", "2"];
    let mut args = vec![
        "replan",
        cur.to_str().unwrap(),
        s4.to_str().unwrap(),
        "--solver",
        "sla",
        "--spare-gpus",
        "8",
        "--json",
    ];
    args.extend(small);
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_str(&stdout(&o)).unwrap();
    assert_eq!(v["target"]["solver"], "sla-replan");
    assert_eq!(v["tiers"][0]["name"], "gpus-needed");
    assert_eq!(v["check"]["scheduler"], "elsa");
    assert_eq!(v["check"]["models"].as_array().unwrap().len(), 11);
    assert!(v["check"]["verified"].is_boolean());
    // The text report ends with the check.
    args.retain(|a| *a != "--json");
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stdout(&o).contains("check       simulated under elsa"));
    // replay-day with the SLA-aware planner: two intervals, each simulated briefly.
    let load = root().join("papers/reconfiguration/diurnal.csv");
    let o = run(
        &[
            "replay-day",
            s4.to_str().unwrap(),
            "--load",
            load.to_str().unwrap(),
            "--every",
            "12h",
            "--solver",
            "sla",
            "--sim-seconds",
            "0.5",
            "--replications",
            "1",
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    assert!(text.contains("replan p99/SLA"), "{text}");
    assert_eq!(text.lines().filter(|l| l.starts_with("12.00")).count(), 1);
    // Every SLA-aware plan of the day went through its check loop.
    assert!(
        text.contains("verified by their check loop (jsq)"),
        "{text}"
    );
}

/// ParvaGPU's scenario 6 with these request rates (in its model order), written to `path`
/// (beside the imported profiles it names).
fn parvagpu_s6_at(pv: &Path, rates: &[f64], path: &Path) {
    let text = std::fs::read_to_string(pv.join("parvagpu-s6.toml")).unwrap();
    let mut next = rates.iter();
    let lines: Vec<String> = text
        .lines()
        .map(|l| match l.strip_prefix("rate_qps = ") {
            Some(_) => format!("rate_qps = {}", next.next().unwrap()),
            None => l.to_string(),
        })
        .collect();
    assert!(
        next.next().is_none(),
        "scenario 6 has {} models",
        rates.len()
    );
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// A 30-GPU ParvaGPU fleet (scenario 6 at twice its rates) and a new load: every model's
/// rate moved by -34% to +6%; a re-plan whose proof takes a few hundred nodes.
const S6_TWICE: [f64; 11] = [
    2528.0, 6684.0, 10520.0, 4538.0, 11444.0, 15026.0, 5622.0, 4020.0, 8392.0, 5318.0, 4592.0,
];
const S6_MOVED: [f64; 11] = [
    2089.9, 4716.2, 11105.5, 2952.9, 11159.2, 12862.0, 3601.4, 3839.9, 5255.5, 4805.1, 2979.7,
];

/// A JSON report without its wall times (every key with `seconds` in it).
fn without_seconds(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(m) => {
            m.retain(|k, _| !k.contains("seconds"));
            m.values_mut().for_each(without_seconds);
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(without_seconds),
        _ => {}
    }
}

/// `--threads` never changes a re-plan: HiGHS solves on one thread. With HiGHS's parallel
/// search (before), `--threads 4` returned another headroom optimum, and on other loads
/// another target, than `--threads 1` on this very re-plan.
#[test]
fn replan_is_the_same_at_any_thread_count() {
    let out = tempfile::tempdir().unwrap();
    let pv = import_parvagpu(out.path());
    let (old, new, cur) = (
        pv.join("old.toml"),
        pv.join("new.toml"),
        pv.join("cur.json"),
    );
    parvagpu_s6_at(&pv, &S6_TWICE, &old);
    parvagpu_s6_at(&pv, &S6_MOVED, &new);
    let (o, n, c) = (
        old.to_str().unwrap(),
        new.to_str().unwrap(),
        cur.to_str().unwrap(),
    );
    let p = run(&["plan", o, "--objective", "min-gpus", "--out", c], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    let replan = |threads: &str| {
        let args = ["replan", c, n, "--old-scenario", o, "--spare-gpus", "3"];
        let r = run(
            &[&args[..], &["--threads", threads, "--json"]].concat(),
            &root(),
        );
        assert!(r.status.success(), "{}", stderr(&r));
        let mut v: serde_json::Value = serde_json::from_str(&stdout(&r)).unwrap();
        without_seconds(&mut v);
        v
    };
    let one = replan("1");
    assert_eq!(one["tiers"][3]["name"], "headroom");
    assert_eq!(replan("4"), one);
}

/// The usual workflow edits the scenario file in place: the plan's recorded scenario then
/// holds the new rates, and min(old, new) would ask a model whose rate rose for more than
/// the current plan gives it before anything is re-cut. The transition keeps what each
/// model has (at most its new rate) instead of refusing every transition.
#[test]
fn replan_after_the_scenario_file_was_edited_in_place() {
    let out = tempfile::tempdir().unwrap();
    let pv = import_parvagpu(out.path());
    let (s, cur) = (pv.join("s.toml"), pv.join("cur.json"));
    let (sp, c) = (s.to_str().unwrap(), cur.to_str().unwrap());
    parvagpu_s6_at(&pv, &S6_TWICE, &s);
    let p = run(
        &["plan", sp, "--objective", "min-gpus", "--out", c],
        &root(),
    );
    assert!(p.status.success(), "{}", stderr(&p));
    parvagpu_s6_at(&pv, &S6_MOVED, &s);
    let r = run(&["replan", c, sp, "--spare-gpus", "3", "--json"], &root());
    assert!(r.status.success(), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).unwrap();
    let t = &v["transition"];
    let nums = |k: &str| -> Vec<f64> {
        t[k].as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (required, before) = (nums("required"), nums("capacity_before"));
    for (m, (&need, &new)) in required.iter().zip(&S6_MOVED).enumerate() {
        assert!(
            need <= before[m] + 1e-9 && need <= new + 1e-9,
            "model {m}: {need}"
        );
        // densenet169 (index 2) rose above what the plan gives: it keeps all it has.
        if m == 2 {
            assert!(new > before[m] && (need - before[m]).abs() < 1e-9);
        }
    }
    for step in t["steps"].as_array().unwrap() {
        let during = step["capacity_during"].as_array().unwrap();
        for (m, c) in during.iter().enumerate() {
            assert!(c.as_f64().unwrap() >= required[m] - 1e-6, "{step}");
        }
    }
}

/// The scenario file the plan records, edited in place to add a model (rates) or to change
/// the server's `gpu.count` (max-load): the plan in service serves no instance of the new
/// model and lists the old server's GPUs, and the re-plan still reads it (before, the
/// plan was checked against the new scenario as if planned for it: exit 2).
#[test]
fn replan_after_the_scenario_file_gained_a_model_or_changed_gpu_count_in_place() {
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    let rates = default_with(["rate_qps = 3000", "rate_qps = 1000"]);
    std::fs::write(at("s.toml"), &rates).unwrap();
    let p = run(
        &["plan", &arg(&at("s.toml")), "--out", &arg(&at("cur.json"))],
        &root(),
    );
    assert!(p.status.success(), "{}", stderr(&p));
    let vit = root().join("profiles/h100-80gb/vit-b16.csv");
    let added = format!(
        "{rates}\n\n[[model]]\nname = \"vit-b16\"\nprofile = \"{}\"\nsla_ms = 80.0\n\
         rate_qps = 500\n",
        vit.display()
    );
    std::fs::write(at("s.toml"), added).unwrap();
    let t = replan_to(
        &at("cur.json"),
        &at("s.toml"),
        &["--spare-gpus", "2"],
        &at("t.json"),
    );
    assert!(t.to_string().contains("\"model\":\"vit-b16\""), "{t}");
    // The next re-plan reads the target, and the same load re-cuts nothing.
    let again = run(
        &["replan", &arg(&at("t.json")), &arg(&at("s.toml")), "--json"],
        &root(),
    );
    assert!(again.status.success(), "{}", stderr(&again));
    let v: serde_json::Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(v["gpus_changed"], 0, "{v}");
    // Max-load on 8 GPUs, then the server shrinks to 4 and grows to 12 in place.
    std::fs::write(at("m.toml"), default_with(["share = 0.5", "share = 0.5"])).unwrap();
    let p = run(
        &["plan", &arg(&at("m.toml")), "--out", &arg(&at("m8.json"))],
        &root(),
    );
    assert!(p.status.success(), "{}", stderr(&p));
    for n in [4, 12] {
        let text = default_with(["share = 0.5", "share = 0.5"])
            .replace("count = 8", &format!("count = {n}"));
        std::fs::write(at("m.toml"), text).unwrap();
        let t = replan_to(&at("m8.json"), &at("m.toml"), &[], &at("mt.json"));
        assert_eq!(gpus_listed_and_used(&t).1, n, "{t}");
    }
}

/// The shipped default scenario with its profiles at absolute paths, and `demand` (a
/// `share = ..` or `rate_qps = ..` line) for resnet50 and bert-base; with rates, without the
/// models' query batches (min-gpus plans single requests).
fn default_with(demand: [&str; 2]) -> String {
    let dir = root().join("profiles/h100-80gb");
    let text = std::fs::read_to_string(dir.join("default.toml")).unwrap();
    let mut k = 0;
    text.lines()
        .map(|l| {
            if let Some(p) = l.strip_prefix("profile = \"") {
                format!("profile = \"{}/{p}", dir.display())
            } else if l.starts_with("share = ") {
                k += 1;
                demand[k - 1].to_string()
            } else if l.starts_with("batch = ") && demand.iter().any(|d| d.starts_with("rate_qps"))
            {
                // Rate targets plan single requests (min-gpus refuses query batches).
                String::new()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A path as the command line takes it.
fn arg(p: &Path) -> String {
    p.to_str().unwrap().to_string()
}

/// A JSON file, read.
fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// The GPUs a plan lists, and how many of them are in use.
fn gpus_listed_and_used(plan: &serde_json::Value) -> (usize, usize) {
    let gpus = plan["gpus"].as_array().unwrap();
    let used = gpus
        .iter()
        .filter(|g| !g["layout"].as_array().unwrap().is_empty());
    (gpus.len(), used.count())
}

/// `migopt replan current scenario [extra] --out out` succeeds; its target plan.
fn replan_to(current: &Path, scenario: &Path, extra: &[&str], out: &Path) -> serde_json::Value {
    let (c, s, o) = (arg(current), arg(scenario), arg(out));
    let args = [&["replan", &c, &s][..], extra, &["--out", &o]].concat();
    let r = run(&args, &root());
    assert!(r.status.success(), "{}", stderr(&r));
    read_json(out)
}

/// `migopt simulate plan` reads the plan and simulates it (briefly).
fn simulates(plan: &Path) {
    let p = arg(plan);
    let o = run(
        &["simulate", &p, "--queries", "2000", "--replications", "2"],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn max_load_replans_chain_from_a_min_gpus_plan_and_through_a_spare_gpu() {
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    std::fs::write(
        at("rates.toml"),
        default_with(["rate_qps = 3000", "rate_qps = 1000"]),
    )
    .unwrap();
    std::fs::write(at("mix.toml"), default_with(["share = 0.8", "share = 0.2"])).unwrap();
    // The shipped default plan (max-load, even mix), re-planned to rate targets (min-gpus).
    let p = run(&["plan", "--out", &arg(&at("start.json"))], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    let cur = replan_to(&at("start.json"), &at("rates.toml"), &[], &at("cur.json"));
    assert!(gpus_listed_and_used(&cur).0 < 8, "{cur}");
    // Max-load on the mix: the target plans all 8 GPUs of the scenario, as a from-scratch
    // max-load plan does, and simulate and the next replan read it.
    let t = replan_to(&at("cur.json"), &at("mix.toml"), &[], &at("target.json"));
    assert_eq!(gpus_listed_and_used(&t).0, 8, "{t}");
    let scratch = output_of(&["plan", &arg(&at("mix.toml")), "--json"], &root());
    let scratch: serde_json::Value = serde_json::from_str(&scratch).unwrap();
    let best = scratch["objective"].as_f64().unwrap();
    let got = t["objective"].as_f64().unwrap();
    assert!((got - best).abs() <= 1e-6 * best, "{got} vs {best}");
    simulates(&at("target.json"));
    // Back to the even mix: the greedy ordering took a spare GPU for it, but the exact
    // transition needs none (it re-cuts two GPUs into each other's target layouts).
    let half = root().join("profiles/h100-80gb/default.toml");
    let none = ["--spare-gpus", "0"];
    let t = replan_to(&at("target.json"), &half, &none, &at("even.json"));
    assert_eq!(gpus_listed_and_used(&t), (8, 8), "{t}");
    // To a 95/5 mix a spare is needed (proven): the transition swaps a new cut onto GPU 8
    // and frees another, so the target lists 9 GPUs, 8 in use; simulate and the next
    // replan read it, and the next replan still plans 8 GPUs.
    std::fs::write(
        at("skew.toml"),
        default_with(["share = 0.95", "share = 0.05"]),
    )
    .unwrap();
    let r = run(
        &["replan", &arg(&at("target.json")), &arg(&at("skew.toml"))],
        &root(),
    );
    assert!(!r.status.success());
    assert!(
        stderr(&r).contains("needs 1 spare GPU(s) (--spare-gpus 1)"),
        "{}",
        stderr(&r)
    );
    let spare = ["--spare-gpus", "1"];
    let t = replan_to(
        &at("target.json"),
        &at("skew.toml"),
        &spare,
        &at("swapped.json"),
    );
    assert_eq!(gpus_listed_and_used(&t), (9, 8), "{t}");
    let text = output_of(
        &[
            "replan",
            &arg(&at("target.json")),
            &arg(&at("skew.toml")),
            "--spare-gpus",
            "1",
        ],
        &root(),
    );
    assert!(
        text.contains("spare GPUs borrowed: [8], the fewest (proven)"),
        "{text}"
    );
    simulates(&at("swapped.json"));
    let t = replan_to(
        &at("swapped.json"),
        &at("mix.toml"),
        &spare,
        &at("next.json"),
    );
    assert_eq!(gpus_listed_and_used(&t).1, 8, "{t}");
    assert!((t["objective"].as_f64().unwrap() - best).abs() <= 1e-6 * best);
}

#[test]
fn replan_to_a_scenario_that_drops_a_model_recuts_its_gpus() {
    let out = tempfile::tempdir().unwrap();
    let pv = import_parvagpu(out.path());
    let text = std::fs::read_to_string(pv.join("parvagpu-s1.toml")).unwrap();
    let blocks: Vec<&str> = text.split("[[model]]").collect();
    assert!(blocks.iter().any(|b| b.contains("name = \"bert\"")));
    let kept: Vec<&str> = blocks
        .into_iter()
        .filter(|b| !b.contains("name = \"bert\""))
        .collect();
    let (s1, nobert) = (pv.join("parvagpu-s1.toml"), pv.join("nobert.toml"));
    std::fs::write(&nobert, kept.join("[[model]]")).unwrap();
    let (cur, target) = (out.path().join("cur.json"), out.path().join("t.json"));
    let p = run(&["plan", &arg(&s1), "--out", &arg(&cur)], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    let t = replan_to(&cur, &nobert, &["--spare-gpus", "2"], &target);
    // bert's instance is gone from the target (its GPU was re-cut), and migopt reads the
    // target against its scenario.
    assert!(!t.to_string().contains("\"model\":\"bert\""), "{t}");
    simulates(&target);
    // The same with the scenario edited in place (the plan records it, now without bert).
    let edit = pv.join("edit.toml");
    std::fs::write(&edit, &text).unwrap();
    let p = run(&["plan", &arg(&edit), "--out", &arg(&cur)], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    std::fs::write(&edit, kept.join("[[model]]")).unwrap();
    let r = run(
        &["replan", &arg(&cur), &arg(&edit), "--spare-gpus", "2"],
        &root(),
    );
    assert!(r.status.success(), "{}", stderr(&r));
}

/// The H100 fleet of the reconfiguration study (`papers/src/reconfiguration.rs`): the four
/// shipped models with rate targets ([`FLEET_RATES`]), their profiles beside the file.
const H100_FLEET: &str = migopt_profiles::builtin::H100_FLEET;

/// [`H100_FLEET`]'s rates, by model.
const FLEET_RATES: [(&str, f64); 4] = [
    ("resnet50", 60000.0),
    ("bert-base", 20000.0),
    ("mobilenetv2", 60000.0),
    ("vit-b16", 8000.0),
];

/// Whether a plan's instance (JSON) runs `model` on `profile`.
fn runs(a: &serde_json::Value, (model, profile): (&str, &str)) -> bool {
    a["model"] == model && a["profile"] == profile
}

/// A target plan (JSON) runs no instance of the pair and provisions every fleet rate.
fn fleet_target_without(t: &serde_json::Value, pair: (&str, &str)) {
    let gpus = t["gpus"].as_array().unwrap();
    let all = gpus.iter().flat_map(|g| g["layout"].as_array().unwrap());
    assert!(!all.clone().any(|a| runs(a, pair)), "{pair:?} kept: {t}");
    for (model, rate) in FLEET_RATES {
        let got = t["model_rates"].as_array().unwrap().iter();
        let got = got
            .filter(|r| r["model"] == model)
            .map(|r| r["rate_qps"].as_f64().unwrap());
        assert!(got.sum::<f64>() >= rate * (1.0 - 1e-9), "{model}: {t}");
    }
}

/// A model's profile CSV edited in place to drop a size the plan in service runs it on:
/// `replan` re-cuts the GPUs that run the model there (as it does those of a model the
/// scenario drops), and every model keeps its rate. Before, the plan in service failed its
/// check against the scenario it records ("no latency profile for `vit-b16` on 3g.40gb",
/// exit 2), and with a GPU of slack the target could keep such an instance, which
/// `simulate` and the next `replan` then refused.
#[test]
fn replan_after_a_profile_csv_lost_a_size_the_plan_uses() {
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    let shipped = root().join("profiles/h100-80gb");
    for (m, _) in FLEET_RATES {
        let csv = format!("{m}.csv");
        std::fs::copy(shipped.join(&csv), at(&csv)).unwrap();
    }
    std::fs::write(at("s.toml"), H100_FLEET).unwrap();
    let (s, cur) = (arg(&at("s.toml")), arg(&at("cur.json")));
    let p = run(&["plan", &s, "--out", &cur], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    let plan = read_json(&at("cur.json"));
    let gpus = plan["gpus"].as_array().unwrap();
    let first = gpus
        .iter()
        .flat_map(|g| g["layout"].as_array().unwrap())
        .find(|a| a["model"] == "vit-b16")
        .unwrap();
    let profile = first["profile"].as_str().unwrap().to_string();
    let pair = ("vit-b16", profile.as_str());
    let hit: Vec<u64> = gpus
        .iter()
        .filter(|g| {
            g["layout"]
                .as_array()
                .unwrap()
                .iter()
                .any(|a| runs(a, pair))
        })
        .map(|g| g["index"].as_u64().unwrap())
        .collect();
    let text = std::fs::read_to_string(at("vit-b16.csv")).unwrap();
    let cut: Vec<&str> = text
        .lines()
        .filter(|l| l.split(',').nth(2) != Some(pair.1))
        .collect();
    std::fs::write(at("vit-b16.csv"), cut.join("\n") + "\n").unwrap();
    let t = arg(&at("t.json"));
    let r = run(
        &[
            "replan",
            &cur,
            &s,
            "--spare-gpus",
            "2",
            "--json",
            "--out",
            &t,
        ],
        &root(),
    );
    assert!(r.status.success(), "{}", stderr(&r));
    let v: serde_json::Value = serde_json::from_str(&stdout(&r)).unwrap();
    for g in &hit {
        let c = v["gpus"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["gpu"] == *g);
        let fate = c.map(|c| c["fate"].as_str().unwrap()).unwrap_or("none");
        assert!(matches!(fate, "re-cut" | "freed"), "GPU {g}: {fate}");
    }
    fleet_target_without(&read_json(&at("t.json")), pair);
    simulates(&at("t.json"));
    // With a GPU of slack the target keeps no such instance either, and the next re-plan
    // reads it.
    let slack = ["--gpu-slack", "1", "--spare-gpus", "2"];
    let t = replan_to(&at("cur.json"), &at("s.toml"), &slack, &at("t1.json"));
    fleet_target_without(&t, pair);
    simulates(&at("t1.json"));
    let again = run(&["replan", &arg(&at("t1.json")), &s, "--json"], &root());
    assert!(again.status.success(), "{}", stderr(&again));
}

/// The fenced block of kind `lang` (```csv, ```toml) that follows `heading` in the README.
fn readme_example(lang: &str, heading: &str) -> String {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    let after = &readme[readme.find(heading).expect(heading)..];
    let fence = format!("```{lang}\n");
    let body = &after[after.find(&fence).expect(&fence) + fence.len()..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn readme_examples_are_valid_inputs() {
    let tmp = tempfile::tempdir().unwrap();
    // The profile CSV example: rows of the shipped ResNet-50 file, accepted on their own.
    let csv = readme_example("csv", "## Profile CSV");
    let shipped = std::fs::read_to_string(root().join("profiles/h100-80gb/resnet50.csv")).unwrap();
    for line in csv.lines() {
        assert!(shipped.lines().any(|l| l == line), "not shipped: {line}");
    }
    std::fs::write(tmp.path().join("p.csv"), &csv).unwrap();
    let o = run(&["profile", "check", "p.csv"], tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    // The scenario example, with each of its three batch distributions, beside a copy of
    // the profile it names.
    let toml = readme_example("toml", "## Scenario TOML");
    std::fs::create_dir(tmp.path().join("h100-80gb")).unwrap();
    std::fs::write(tmp.path().join("h100-80gb/resnet50.csv"), &shipped).unwrap();
    let batches: Vec<&str> = toml
        .lines()
        .filter_map(|l| l.trim_start_matches("# ").strip_prefix("batch = "))
        .map(|b| &b[..=b.rfind('}').unwrap()])
        .collect();
    assert_eq!(batches.len(), 3, "{toml}");
    let active = toml.lines().find(|l| l.starts_with("batch = ")).unwrap();
    for b in batches {
        let text = toml.replace(active, &format!("batch = {b}"));
        std::fs::write(tmp.path().join("s.toml"), text).unwrap();
        let o = run(&["scenario", "check", "s.toml"], tmp.path());
        assert!(o.status.success(), "{b}: {}", stderr(&o));
        assert!(
            stdout(&o).starts_with("two models: 8 x H100-80GB"),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn replan_writes_one_mig_parted_config_per_step() {
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    std::fs::write(at("mix.toml"), default_with(["share = 0.7", "share = 0.3"])).unwrap();
    let p = run(&["plan", "--out", &arg(&at("plan.json"))], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    let args = [
        "replan",
        &arg(&at("plan.json")),
        &arg(&at("mix.toml")),
        "--spare-gpus",
        "1",
        "--json",
        "--mig-parted-dir",
        &arg(&at("steps")),
    ];
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let steps = v["transition"]["steps"].as_array().unwrap().len();
    assert!(steps > 0, "{v}");
    let written = files_of(&at("steps"), "yaml", |_| true);
    let names: Vec<String> = (1..=steps).map(|k| format!("step-{k:02}.yaml")).collect();
    let got: Vec<String> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(got, names);
    for f in &written {
        let y = std::fs::read_to_string(f).unwrap();
        assert!(
            y.contains("version: v1") && y.contains("mig-configs:"),
            "{y}"
        );
    }
}

/// A second transition written into the folder of a longer one: the earlier steps it does
/// not replace are removed (before, step-NN.yaml of the earlier transition stayed beside the
/// new ones, and applying the folder in order applied them too); other files stay.
#[test]
fn replan_into_a_used_mig_parted_folder_leaves_only_its_own_steps() {
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    std::fs::write(at("mix.toml"), default_with(["share = 0.7", "share = 0.3"])).unwrap();
    let p = run(&["plan", "--out", &arg(&at("plan.json"))], &root());
    assert!(p.status.success(), "{}", stderr(&p));
    let steps = arg(&at("steps"));
    let spare = ["--spare-gpus", "1", "--mig-parted-dir", &steps];
    replan_to(&at("plan.json"), &at("mix.toml"), &spare, &at("t.json"));
    let first = files_of(&at("steps"), "yaml", |_| true);
    assert!(!first.is_empty());
    std::fs::write(at("steps/step-99.yaml"), "# a file of the user's\n").unwrap();
    std::fs::write(at("steps/notes.yaml"), "# a file of the user's\n").unwrap();
    // The target re-planned for the same load: no step, so no step file of migopt's.
    let o = run(
        &[
            "replan",
            &arg(&at("t.json")),
            &arg(&at("mix.toml")),
            "--mig-parted-dir",
            &steps,
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(
        stdout(&o).contains("transition: 0 step(s)"),
        "{}",
        stdout(&o)
    );
    let names: Vec<String> = files_of(&at("steps"), "yaml", |_| true)
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["notes.yaml", "step-99.yaml"]);
    assert!(stdout(&o).contains("removed "), "{}", stdout(&o));
}

#[test]
fn replay_day_compares_three_strategies_and_writes_its_day() {
    let out = tempfile::tempdir().unwrap();
    let pv = import_parvagpu(out.path());
    let s2 = arg(&pv.join("parvagpu-s2.toml"));
    let load = arg(&root().join("papers/reconfiguration/diurnal.csv"));
    let day = arg(&out.path().join("day.json"));
    let args = [
        "replay-day",
        &s2,
        "--load",
        &load,
        "--every",
        "6h",
        "--sim-seconds",
        "0.5",
        "--replications",
        "1",
        "--out",
        &day,
    ];
    let o = run(&args, &root());
    assert!(o.status.success(), "{}", stderr(&o));
    let text = stdout(&o);
    for s in ["static-peak", "from-scratch", "replan"] {
        assert!(
            text.lines().any(|l| l.starts_with(s)),
            "{s} missing:\n{text}"
        );
    }
    for h in ["00.00", "06.00", "12.00", "18.00"] {
        assert_eq!(
            text.lines().filter(|l| l.starts_with(h)).count(),
            1,
            "{text}"
        );
    }
    let v = read_json(Path::new(&day));
    assert_eq!(v["intervals"].as_array().unwrap().len(), 4);
    assert_eq!(v["gpu_hours"].as_array().unwrap().len(), 3);
    // An interval that does not divide the day is bad input.
    let o = run(&[&args[..4], &["--every", "7h"]].concat(), &root());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("does not cut the day"),
        "{}",
        stderr(&o)
    );
}

#[test]
fn reproduce_sim_to_real_regenerates_from_the_committed_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("s2r");
    let o = run(
        &["reproduce", "papers/sim-to-real", "--out", &arg(&out)],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let md = std::fs::read_to_string(out.join("RESULTS.md")).unwrap();
    assert!(md.starts_with("# sim-to-real"), "{md}");
    assert!(md.contains("| load-aware |"), "{md}");
    for f in ["capacity.csv", "errors.csv", "p99-elsa.svg", "p99-fifs.svg"] {
        assert!(out.join("results").join(f).is_file(), "{f} missing");
    }
    assert!(
        stdout(&o).contains("load-aware p50 and p99 within"),
        "{}",
        stdout(&o)
    );
}

#[test]
fn scenario_check_prints_the_loaded_scenario_as_json() {
    let o = run(
        &[
            "scenario",
            "check",
            "--json",
            "profiles/h100-80gb/default.toml",
        ],
        &root(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let s = &v.as_array().unwrap()[0];
    assert_eq!(s["name"], "default");
    assert_eq!(s["models"].as_array().unwrap().len(), 2);
    // Every measured curve: 2 models x 6 profiles, each with its key.
    let curves = s["profiles"]["curves"].as_array().unwrap();
    assert_eq!(curves.len(), 12, "{}", s["profiles"]);
    assert_eq!(curves[0][0]["model"], "bert-base");
}

/// A plan written into another folder (`plan --out`, `replan --out`) records its scenario so
/// that `simulate` finds it from any working folder, the plan's own included.
#[test]
fn plans_written_elsewhere_find_their_scenario_from_any_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let at = |name: &str| tmp.path().join(name);
    std::fs::create_dir(at("scen")).unwrap();
    let mix = default_with(["share = 0.7", "share = 0.3"]).replace("\"default\"", "\"mix\"");
    std::fs::write(at("scen/mix.toml"), mix).unwrap();
    let o = run(
        &["plan", "scen/mix.toml", "--out", "plans/p.json"],
        tmp.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let spare = ["--spare-gpus", "2"];
    let args = [
        "replan",
        "plans/p.json",
        "scen/mix.toml",
        "--out",
        "plans/r.json",
    ];
    let o = run(&[&args[..], &spare].concat(), tmp.path());
    assert!(o.status.success(), "{}", stderr(&o));
    for plan in ["p.json", "r.json"] {
        for (cwd, p) in [
            (at("plans"), plan.to_string()),
            (root(), arg(&at("plans").join(plan))),
        ] {
            let o = run(
                &["simulate", &p, "--queries", "2000", "--replications", "2"],
                &cwd,
            );
            assert!(
                o.status.success(),
                "{plan} from {}: {}",
                cwd.display(),
                stderr(&o)
            );
            assert!(stdout(&o).starts_with("simulated mix"), "{}", stdout(&o));
        }
    }
}

/// `capacity` searches the rate on Poisson arrivals: its help offers no `--rate` or
/// `--trace`, and either is refused as bad input.
#[test]
fn capacity_offers_and_takes_no_rate_or_trace() {
    let o = run(&["capacity", "--help"], &root());
    assert!(o.status.success());
    let help = stdout(&o);
    assert!(help.contains("--violation-budget"), "{help}");
    assert!(
        !help.contains("--rate") && !help.contains("--trace"),
        "{help}"
    );
    let tmp = tempfile::tempdir().unwrap();
    let trace = tmp.path().join("t.csv");
    std::fs::write(&trace, "arrival_ms,model,batch\n1.0,resnet50,1\n").unwrap();
    for (extra, why) in [
        (["--rate", "100"], "does not apply to capacity"),
        (["--trace", trace.to_str().unwrap()], "not a trace"),
    ] {
        let o = run(&[&["capacity"][..], &extra].concat(), &root());
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(why), "{}", stderr(&o));
    }
}

/// Each slack flag belongs to one objective; given to the other it would be ignored, so it
/// is bad input (before, `--gpu-slack` under max-load and `--load-slack` under min-gpus
/// were silently ignored) and nothing is written.
#[test]
fn replan_refuses_a_slack_of_the_other_objective() {
    let out = tempfile::tempdir().unwrap();
    let at = |name: &str| out.path().join(name);
    let rates = default_with(["rate_qps = 3000", "rate_qps = 1000"]);
    std::fs::write(at("r.toml"), rates).unwrap();
    std::fs::write(at("m.toml"), default_with(["share = 0.5", "share = 0.5"])).unwrap();
    for (s, flag, want) in [
        ("r.toml", ["--load-slack", "0.1"], "migopt: error: --load-slack does not apply to a min-gpus re-plan (its slack is --gpu-slack)\n"),
        ("m.toml", ["--gpu-slack", "1"], "migopt: error: --gpu-slack does not apply to a max-load re-plan (its slack is --load-slack)\n"),
    ] {
        let cur = at(&format!("{s}.json"));
        let p = run(&["plan", &arg(&at(s)), "--out", &arg(&cur)], &root());
        assert!(p.status.success(), "{}", stderr(&p));
        let target = at("target.json");
        let (c, n, t) = (arg(&cur), arg(&at(s)), arg(&target));
        let args = [&["replan", &c, &n][..], &flag, &["--out", &t]].concat();
        let o = run(&args, &root());
        assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
        assert_eq!(stderr(&o), want);
        assert!(!target.exists());
    }
}
