//! Fuzzing of every input format: arbitrary bytes, and mutations of valid files (hostile
//! numbers in place of real ones, deleted and duplicated lines, byte-order marks, CRLF),
//! fed to each parser in-process and, for a few cases, through the `migopt` binary under
//! an address-space cap and a deadline. The contract: no panic, exit 0 or 2, every
//! accepted value within `migopt_models::limits`, and bounded memory and time: in-process,
//! a counting allocator measures each parser call's peak heap on its own thread.

use migopt_models::limits::{MAX_BATCH, MAX_GPUS, MAX_PROCS};
use migopt_models::{Plan, ProfileSet, Scenario};
use proptest::prelude::*;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The config of every property test here: `cases` cases on a fixed seed.
fn proptest_config(cases: u32) -> proptest::test_runner::Config {
    use proptest::test_runner::{Config, RngSeed};
    // Fixed: the same seed gives the same result (the guide demands determinism).
    let mut config = Config::with_cases(cases);
    // Unless PROPTEST_RNG_SEED=<u64> (read into the default config) asks for another seed.
    if config.rng_seed == RngSeed::Random {
        config.rng_seed = RngSeed::Fixed(1);
    }
    config
}

/// The system allocator, counting the bytes each thread holds and the most it held.
struct Counting;

thread_local! {
    /// Bytes allocated minus bytes freed on this thread (frees of other threads' blocks can
    /// take it below zero), and its highest value since the last [`bounded`] began.
    static HELD: Cell<(isize, isize)> = const { Cell::new((0, 0)) };
}

fn count(delta: isize) {
    let _ = HELD.try_with(|h| {
        let (now, peak) = h.get();
        h.set((now + delta, peak.max(now + delta)));
    });
}

// SAFETY: every call is forwarded unchanged to `System`; only counters are updated.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        unsafe { System.dealloc(p, l) };
        count(-(l.size() as isize));
    }
    unsafe fn alloc_zeroed(&self, l: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(l) };
        if !p.is_null() {
            count(l.size() as isize);
        }
        p
    }
    unsafe fn realloc(&self, p: *mut u8, l: Layout, new: usize) -> *mut u8 {
        let q = unsafe { System.realloc(p, l, new) };
        if !q.is_null() {
            count(new as isize - l.size() as isize);
        }
        q
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// The most heap one parser call on an input of at most a few kB may take, and the
/// longest it may run (a hang detector for an unoptimised build on a busy machine, not a
/// speed target).
const MAX_HEAP: isize = 256 << 20;
const MAX_TIME: Duration = Duration::from_secs(30);

/// Runs `f`, asserting that its peak heap on this thread stays under [`MAX_HEAP`] and that
/// it returns within [`MAX_TIME`].
fn bounded<T>(what: &str, f: impl FnOnce() -> T) -> T {
    let start = HELD.with(|h| {
        let (now, _) = h.get();
        h.set((now, now));
        now
    });
    let t0 = Instant::now();
    let out = f();
    let (elapsed, peak) = (t0.elapsed(), HELD.with(|h| h.get().1) - start);
    assert!(
        peak < MAX_HEAP,
        "{what} held {peak} bytes of heap at its peak"
    );
    assert!(elapsed < MAX_TIME, "{what} ran {elapsed:?}");
    out
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Values that have broken parsers before: huge, tiny, denormal, non-finite, wrapping,
/// empty, quoted.
const HOSTILE: &[&str] = &[
    "0",
    "-1",
    "1e300",
    "1e-300",
    "5e-324",
    "NaN",
    "inf",
    "-inf",
    "4294967295",
    "4000000000",
    "18446744073709551616",
    "65537",
    "1e18",
    "",
    "x",
    "\"",
    "1.5",
    "\u{feff}",
    "9999999999999999999999999999",
];

/// One edit of a text: which kind, where (a fraction of the length), which hostile value.
type Edit = (u8, f64, usize);

fn edits() -> impl Strategy<Value = Vec<Edit>> {
    prop::collection::vec((0u8..6, 0.0f64..1.0, 0usize..HOSTILE.len()), 1..4)
}

/// Applies edits: replace a number with a hostile value, delete a span, duplicate a line,
/// insert a hostile value, add a byte-order mark, or switch to CRLF.
fn mutate(text: &str, edits: &[Edit]) -> String {
    let mut t = text.to_string();
    for &(kind, at, pick) in edits {
        let pos = floor_char(&t, (at * t.len() as f64) as usize);
        match kind {
            0 => {
                // The number nearest after `pos`.
                let bytes = t.as_bytes();
                let start = (pos..bytes.len()).find(|&i| bytes[i].is_ascii_digit());
                if let Some(s) = start {
                    let e = (s..bytes.len())
                        .find(|&i| {
                            !(bytes[i].is_ascii_alphanumeric() || b".-+".contains(&bytes[i]))
                        })
                        .unwrap_or(bytes.len());
                    t.replace_range(s..e, HOSTILE[pick]);
                }
            }
            1 => {
                let end = floor_char(&t, (pos + 1 + pick * 3).min(t.len()));
                t.replace_range(pos..end, "");
            }
            2 => {
                let lines: Vec<&str> = t.lines().collect();
                if !lines.is_empty() {
                    let i = (at * lines.len() as f64) as usize % lines.len();
                    let mut v: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
                    v.insert(i, lines[i].to_string());
                    t = v.join("\n") + "\n";
                }
            }
            3 => t.insert_str(pos, HOSTILE[pick]),
            4 => t.insert(0, '\u{feff}'),
            _ => t = t.replace("\r\n", "\n").replace('\n', "\r\n"),
        }
    }
    t
}

fn floor_char(s: &str, mut i: usize) -> usize {
    i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn read(p: &str) -> String {
    std::fs::read_to_string(root().join(p)).unwrap()
}

/// Every accepted profile respects the bounds.
fn check_profile(text: &str) {
    bounded("profile CSV", || check_profile_unbounded(text))
}

fn check_profile_unbounded(text: &str) {
    if let Ok(set) = ProfileSet::from_csv_str(text, Path::new("f.csv")) {
        for (k, c) in &set.curves {
            assert!((1..=MAX_PROCS).contains(&k.procs));
            assert!(c.batches.iter().all(|&b| (1..=MAX_BATCH).contains(&b)));
            assert!(c.latency_ms.iter().all(|l| l.is_finite() && *l > 0.0));
        }
        let _ = set.interpolated();
    }
}

fn scenario_with(text: &str, csv: &str) -> Result<Scenario, migopt_models::Error> {
    let csv = csv.to_string();
    Scenario::parse(text, Path::new("s.toml"), &mut move |_: &Path| {
        Ok(csv.clone())
    })
}

fn check_scenario(text: &str, csv: &str) {
    if let Ok(s) = bounded("scenario TOML", || scenario_with(text, csv)) {
        assert!((1..=MAX_GPUS).contains(&s.gpu_count));
        for m in &s.models {
            let pmf = m.batch.pmf();
            assert!(pmf.iter().all(|&(b, p)| b <= MAX_BATCH && p.is_finite()));
        }
    }
}

/// The shipped default scenario, loaded once for all cases.
fn default_scenario() -> &'static Scenario {
    static S: std::sync::OnceLock<Scenario> = std::sync::OnceLock::new();
    S.get_or_init(|| migopt_profiles::default_scenario().unwrap())
}

fn check_plan(text: &str, s: &Scenario) {
    if let Ok(p) = bounded("plan JSON", || Plan::from_json(text, Path::new("p.json"))) {
        if bounded("plan check", || p.check_against(Path::new("p.json"), s)).is_ok() {
            assert!(p.gpus.len() <= MAX_GPUS as usize);
            assert!(p
                .instances()
                .all(|(_, a)| a.batch <= MAX_BATCH && a.procs <= MAX_PROCS));
        }
    }
}

fn check_trace(text: &str) {
    if let Ok(t) = bounded("trace CSV", || {
        migopt_sim::parse_trace(text, Path::new("t.csv"))
    }) {
        assert!(t
            .iter()
            .all(|r| r.arrival_ms.is_finite() && r.batch <= MAX_BATCH));
    }
}

const PROFILE: &str = "profiles/h100-80gb/resnet50.csv";
const SCENARIO: &str = "tests/corpus/toml/ok.toml";
const PLAN: &str = "tests/corpus/plan/ok-plan.json";
const TRACE: &str = "tests/corpus/trace/ok-bom-crlf.csv";

/// The valid scenario, naming its profile `p.csv` beside it.
fn scenario_text() -> String {
    read(SCENARIO).replace("../../../profiles/h100-80gb/resnet50.csv", "p.csv")
}

proptest! {
    #![proptest_config(proptest_config(64))]

    #[test]
    fn arbitrary_bytes_never_panic_a_parser(bytes in prop::collection::vec(any::<u8>(), 0..400)) {
        let text = String::from_utf8_lossy(&bytes);
        check_profile(&text);
        check_scenario(&text, &read(PROFILE));
        check_plan(&text, default_scenario());
        check_trace(&text);
    }

    #[test]
    fn mutated_profiles_are_accepted_within_bounds_or_rejected(e in edits()) {
        check_profile(&mutate(&read(PROFILE), &e));
    }

    #[test]
    fn mutated_scenarios_are_accepted_within_bounds_or_rejected(e in edits(), f in edits()) {
        check_scenario(&mutate(&scenario_text(), &e), &mutate(&read(PROFILE), &f));
    }

    #[test]
    fn mutated_plans_are_accepted_within_bounds_or_rejected(e in edits()) {
        check_plan(&mutate(&read(PLAN), &e), default_scenario());
    }

    #[test]
    fn mutated_traces_are_accepted_within_bounds_or_rejected(e in edits()) {
        check_trace(&mutate(&read(TRACE), &e));
    }
}

/// A small ParvaGPU-shaped data set: two models, two SLO scenarios.
fn parvagpu_files() -> Vec<(&'static str, String)> {
    vec![
        (
            "prof_data/aa.csv",
            "Mig instance,Batch size,Workload Number,Throughput,Latency\n1,1,1,196.7,0.005\n1,2,2,150.0,0.013\n7,8,1,900,0.009\n1,4,4,0,0\n".into(),
        ),
        (
            "prof_data/bb.csv",
            "Mig instance,Batch size,Workload Number,Throughput,Latency\n7,1,1,500,0.002\n3,2,1,300,0.004\n".into(),
        ),
        ("SLO/SLO_req_rate.csv", "10,N/A\n20,5\n".into()),
        ("SLO/SLO_latency.csv", "100,N/A\n200,50\n".into()),
    ]
}

/// Writes [`parvagpu_files`] under `dir`, file number `which` passed through `edit`.
fn write_parvagpu(dir: &Path, which: usize, edit: impl Fn(&str) -> String) {
    for (i, (name, text)) in parvagpu_files().into_iter().enumerate() {
        let p = dir.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, if i == which { edit(&text) } else { text }).unwrap();
    }
}

proptest! {
    #![proptest_config(proptest_config(32))]

    #[test]
    fn mutated_parvagpu_sets_import_within_bounds_or_are_rejected(which in 0usize..4, e in edits()) {
        let d = tempfile::tempdir().unwrap();
        write_parvagpu(d.path(), which, |t| mutate(t, &e));
        if let Ok(imp) = bounded("ParvaGPU import", || migopt_profiles::parvagpu::read(d.path())) {
            // Everything the importer accepts renders into files migopt reads back.
            if let Ok(files) = imp.files(&d.path().join("out")) {
                for (p, text) in files.iter().filter(|f| f.0.extension().is_some_and(|x| x == "csv")) {
                    prop_assert!(ProfileSet::from_csv_str(text, p).is_ok(), "{}", p.display());
                }
            }
        }
    }
}

/// Runs the binary under a 4 GB address-space cap; kills it after `limit`.
fn run_capped(args: &[&str], dir: &Path, limit: Duration) -> Option<i32> {
    let bin = env!("CARGO_BIN_EXE_migopt");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("ulimit -v 4000000; exec \"$0\" \"$@\"")
        .arg(bin)
        .args(args)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("binary starts");
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            if status.code() != Some(0) && status.code() != Some(2) {
                let mut err = String::new();
                if let Some(mut e) = child.stderr.take() {
                    use std::io::Read;
                    let _ = e.read_to_string(&mut err);
                }
                panic!("{args:?} exited with {status}: {err}");
            }
            return status.code();
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{args:?} ran longer than {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

proptest! {
    #![proptest_config(proptest_config(8))]

    #[test]
    fn the_binary_exits_0_or_2_on_mutated_inputs(e in edits(), f in edits(), g in edits()) {
        let d = tempfile::tempdir().unwrap();
        let csv = mutate(&read(PROFILE), &e);
        std::fs::write(d.path().join("p.csv"), &csv).unwrap();
        let toml = mutate(&scenario_text(), &f);
        std::fs::write(d.path().join("s.toml"), &toml).unwrap();
        std::fs::write(d.path().join("plan.json"), mutate(&read(PLAN), &g)).unwrap();
        std::fs::write(d.path().join("t.csv"), mutate(&read(TRACE), &f)).unwrap();
        let limit = Duration::from_secs(60);
        run_capped(&["profile", "check", "--interpolate", "p.csv"], d.path(), limit);
        run_capped(&["scenario", "check", "s.toml"], d.path(), limit);
        run_capped(&["simulate", "plan.json", "--queries", "2000", "--replications", "1"], d.path(), limit);
        run_capped(
            &["simulate", "plan.json", "--queries", "2000", "--replications", "1", "--trace", "t.csv"],
            d.path(),
            limit,
        );
        // A mutated ParvaGPU set imports completely or writes nothing.
        write_parvagpu(&d.path().join("pv"), e.len() % 4, |t| mutate(t, &g));
        let code = run_capped(&["import", "parvagpu", "pv", "--out", "out"], d.path(), limit);
        prop_assert_eq!(code == Some(0), d.path().join("out").exists());
    }
}

/// The guard itself: a parser that took 300 MiB would fail the fuzz cases.
#[test]
#[should_panic(expected = "bytes of heap at its peak")]
fn the_heap_guard_catches_a_large_allocation() {
    bounded("a 300 MiB buffer", || {
        std::hint::black_box(vec![0u8; 300 << 20]).len()
    });
}
