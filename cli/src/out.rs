//! Output helpers: writing files only once everything is rendered (so bad input leaves no
//! partial output), and small text-table rendering.

use migopt_models::{Error, GpuSpec, Layout};
use std::io::Write as _;
use std::path::Path;

/// Writes to standard output. A closed pipe (`migopt ... | head`) ends the program quietly,
/// as command-line tools do, instead of panicking.
pub fn emit(s: &str) {
    let mut o = std::io::stdout().lock();
    if let Err(e) = o.write_all(s.as_bytes()).and_then(|_| o.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("migopt: cannot write to standard output: {e}");
        std::process::exit(1);
    }
}

/// `print!` through [`emit`].
#[macro_export]
macro_rules! say {
    ($($t:tt)*) => { $crate::out::emit(&format!($($t)*)) };
}

/// `println!` through [`emit`].
#[macro_export]
macro_rules! sayln {
    ($($t:tt)*) => {{ let mut s = format!($($t)*); s.push('\n'); $crate::out::emit(&s) }};
}

/// Writes every (path, contents) pair, after all were rendered; creates parent folders.
pub fn write_all<P: AsRef<Path>>(files: &[(P, String)]) -> Result<(), Error> {
    for (p, data) in files {
        let p = p.as_ref();
        if let Some(parent) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        std::fs::write(p, data).map_err(|e| Error::io(p, e))?;
    }
    Ok(())
}

/// Draws a layout's memory slots as a bar: each slot shows the compute size of the
/// instance that owns it, `|` separates instances, `.` is an idle slot.
/// `[4444|22|1|.]` is 4g + 2g + 1g with slot 7 idle.
pub fn slot_bar(gpu: &GpuSpec, layout: &Layout, label: impl Fn(usize) -> char) -> String {
    let mut owner: Vec<Option<usize>> = vec![None; gpu.memory_slots as usize];
    for (i, p) in layout.instances.iter().enumerate() {
        if let Ok(spec) = gpu.profile(p.profile.as_str()) {
            for s in p.start..p.start + spec.slots {
                owner[s as usize] = Some(i);
            }
        }
    }
    let mut bar = String::from("[");
    for (s, o) in owner.iter().enumerate() {
        if s > 0 && owner[s - 1] != *o {
            bar.push('|');
        }
        bar.push(o.map(&label).unwrap_or('.'));
    }
    bar.push(']');
    bar
}

/// Renders rows as an aligned text table with a header.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let n = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(n) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            let pad = w[i] - c.chars().count();
            s.push_str(c);
            if i + 1 < cells.len() {
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_string()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    out.push_str(&line(
        w.iter()
            .map(|&k| "-".repeat(k))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect(),
    ));
    out.push('\n');
    for r in rows {
        out.push_str(&line(r.iter().map(|s| s.as_str()).collect()));
        out.push('\n');
    }
    out
}
