//! Trace reading: records per second of `parse_trace` on a 1,000,000-record
//! `arrival_ms,model,batch` trace (two models, batches 1–32), the parse every
//! `simulate --trace` and `serve --trace` run starts with. Run with
//! `cargo bench --workspace --bench trace`; the figures go in BENCHMARKS.md.

use divan::counter::ItemsCount;
use divan::Bencher;
use std::path::Path;

fn main() {
    divan::main();
}

const RECORDS: usize = 1_000_000;

/// The trace text: arrivals every 0.25 ms, models and batches in a fixed cycle.
fn trace_text() -> String {
    let mut t = String::from("arrival_ms,model,batch\n");
    for i in 0..RECORDS {
        let model = if i % 3 == 0 { "bert-base" } else { "resnet50" };
        t.push_str(&format!("{:.3},{model},{}\n", i as f64 * 0.25, 1 + i % 32));
    }
    t
}

#[divan::bench(sample_count = 10)]
fn parse_one_million_records(b: Bencher) {
    let text = trace_text();
    b.counter(ItemsCount::new(RECORDS)).bench(|| {
        migopt_sim::parse_trace(divan::black_box(&text), Path::new("t.csv"))
            .map(|r| r.len())
            .unwrap()
    });
}
