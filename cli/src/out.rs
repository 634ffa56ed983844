//! Output helpers: writing files only once everything is rendered (so bad input leaves no
//! partial output), and small text-table rendering.

use migopt_models::input::Inputs;
use migopt_models::{Error, GpuSpec, Layout};
use std::io::Write as _;
use std::path::{Path, PathBuf};

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

/// Writes every (path, contents) pair, atomically as a set: each is first written to a
/// temporary file in its target folder, and only when all of them are written are they
/// renamed into place. A failure leaves no output behind (the temporary files and any
/// folder this call created are removed); a target whose folder is not a folder, or that
/// names one of the command's `inputs`, is an input error found before anything is written.
pub fn write_all<P: AsRef<Path>>(files: &[(P, String)], inputs: &Inputs) -> Result<(), Error> {
    check_targets(files.iter().map(|(p, _)| p.as_ref()), inputs)?;
    let mut created: Vec<PathBuf> = Vec::new();
    let mut temps: Vec<(PathBuf, &Path)> = Vec::new();
    let staged = stage(files, &mut created, &mut temps);
    let renamed = staged.and_then(|()| {
        temps
            .iter()
            .try_for_each(|(tmp, dest)| std::fs::rename(tmp, dest).map_err(|e| Error::io(*dest, e)))
    });
    if renamed.is_err() {
        for (tmp, _) in &temps {
            let _ = std::fs::remove_file(tmp);
        }
        for d in created.iter().rev() {
            let _ = std::fs::remove_dir(d);
        }
    }
    renamed
}

/// Creates the missing folders and writes every file to a temporary name beside its target.
fn stage<'a, P: AsRef<Path>>(
    files: &'a [(P, String)],
    created: &mut Vec<PathBuf>,
    temps: &mut Vec<(PathBuf, &'a Path)>,
) -> Result<(), Error> {
    for (i, (p, data)) in files.iter().enumerate() {
        let p = p.as_ref();
        let dir = parent_of(p);
        // A relative path's ancestors end in "", which is the current folder, not one to create.
        let missing: Vec<&Path> = dir
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .collect();
        for d in missing.into_iter().rev() {
            std::fs::create_dir(d).map_err(|e| Error::io(d, e))?;
            created.push(d.to_path_buf());
        }
        let name = p
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default();
        let tmp = dir.join(format!(".{name}.migopt-{}-{i}.tmp", std::process::id()));
        temps.push((tmp.clone(), p));
        std::fs::write(&tmp, data).map_err(|e| Error::io(p, e))?;
    }
    Ok(())
}

/// The folder a path is written into (`.` for a bare file name).
fn parent_of(p: &Path) -> &Path {
    p.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Every target passes [`check_target`], and no two name the same file (the later would
/// silently replace the earlier).
pub fn check_targets<'a>(
    paths: impl IntoIterator<Item = &'a Path>,
    inputs: &Inputs,
) -> Result<(), Error> {
    let mut seen = std::collections::BTreeMap::new();
    for p in paths {
        check_target(p, inputs)?;
        if let Some(first) = seen.insert(migopt_models::input::entry_key(p), p) {
            let also = if first == p {
                String::new()
            } else {
                format!(" (also given as {})", first.display())
            };
            return Err(Error::Invalid(format!(
                "two outputs are the same file {}{also}: one would replace the other",
                p.display()
            )));
        }
    }
    Ok(())
}

/// `p` itself, or the nearest path above it, that exists: what a write into `p` (made with
/// its missing folders) lands in.
pub fn nearest_existing(p: &Path) -> Option<&Path> {
    p.ancestors()
        .filter(|a| !a.as_os_str().is_empty())
        .find(|a| a.exists())
}

/// A target must not be a folder nor one of the command's `inputs`, and the nearest
/// existing folder above it must be a folder.
pub fn check_target(p: &Path, inputs: &Inputs) -> Result<(), Error> {
    if p.is_dir() {
        return Err(Error::Invalid(format!(
            "cannot write {}: it is a folder",
            p.display()
        )));
    }
    if p.file_name().is_none() {
        return Err(Error::Invalid(format!(
            "cannot write {}: not a file name",
            p.display()
        )));
    }
    // A device, pipe or socket (`/dev/null`, `/dev/stdout`, a FIFO): renaming a file onto it
    // would replace it, and for root that is the system's `/dev/null`.
    if std::fs::metadata(p).is_ok_and(|m| !m.is_file()) {
        return Err(Error::Invalid(format!(
            "cannot write {}: not a regular file (a device, pipe or socket), which the output would replace",
            p.display()
        )));
    }
    if inputs.contains(p) {
        return Err(Error::Invalid(format!(
            "cannot write {}: it is an input of this command, which the output would replace",
            p.display()
        )));
    }
    if let Some(a) = nearest_existing(parent_of(p)) {
        if !a.is_dir() {
            return Err(Error::Invalid(format!(
                "cannot write {}: {} is not a folder",
                p.display(),
                a.display()
            )));
        }
    }
    Ok(())
}

/// The width output should fit: `$COLUMNS` when set, else the terminal's width when
/// standard output is a terminal, else 100.
pub fn term_width() -> usize {
    if let Some(w) = std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.trim().parse::<usize>().ok())
        .filter(|&w| w > 0)
    {
        return w;
    }
    console::Term::stdout()
        .size_checked()
        .map(|(_, w)| w as usize)
        .filter(|&w| w > 0)
        .unwrap_or(100)
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
    let w = widths(header, rows, header.len());
    render(header, &w, rows, &[], 0)
}

/// The width of each column: its widest cell among the header and the first `cols` cells
/// of every row.
fn widths(header: &[&str], rows: &[Vec<String>], cols: usize) -> Vec<usize> {
    let mut w: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            w[i] = w[i].max(c.chars().count());
        }
    }
    w
}

/// One line of a table: every cell but the last padded to its column's width plus two.
fn row_line<S: AsRef<str>>(cells: &[S], w: &[usize]) -> String {
    let mut s = String::new();
    for (i, c) in cells.iter().enumerate() {
        let c = c.as_ref();
        s.push_str(c);
        if i + 1 < cells.len() {
            s.push_str(&" ".repeat(w[i] - c.chars().count() + 2));
        }
    }
    s.trim_end().to_string()
}

/// Header, rule and rows at widths `w`; `more[i]` holds continuation lines of row `i`,
/// each written at column `indent`.
fn render(
    header: &[&str],
    w: &[usize],
    rows: &[Vec<String>],
    more: &[Vec<String>],
    indent: usize,
) -> String {
    let mut out = row_line(header, w);
    out.push('\n');
    let rule: Vec<String> = w.iter().map(|&k| "-".repeat(k)).collect();
    out += &row_line(&rule, w);
    out.push('\n');
    for (i, r) in rows.iter().enumerate() {
        out += &row_line(r, w);
        out.push('\n');
        for m in more.get(i).into_iter().flatten() {
            out += &" ".repeat(indent);
            out += m;
            out.push('\n');
        }
    }
    out
}

/// [`table`] fitted to `width` columns: where a row is too wide, its last cell (items
/// separated by two spaces) continues on the following lines, aligned under its column.
/// An item wider than the room left stays whole on a line of its own.
pub fn table_fit(header: &[&str], rows: &[Vec<String>], width: usize) -> String {
    let n = header.len();
    let mut w = widths(header, rows, n.saturating_sub(1));
    // Where the last column starts, and the room it has.
    let indent: usize = w.iter().take(n.saturating_sub(1)).map(|k| k + 2).sum();
    let room = width.saturating_sub(indent).max(1);
    let mut split_rows: Vec<Vec<String>> = Vec::new();
    let mut continuation: Vec<Vec<String>> = Vec::new();
    for r in rows {
        let last = r.last().cloned().unwrap_or_default();
        let mut lines = wrap_items(&last, room);
        let head = lines.remove(0);
        let mut first = r.clone();
        if let Some(c) = first.last_mut() {
            *c = head;
        }
        split_rows.push(first);
        continuation.push(lines);
    }
    // The last column's rule is as wide as its widest line.
    if let Some(last) = w.last_mut() {
        *last = split_rows
            .iter()
            .map(|r| r.last().map_or(0, |c| c.chars().count()))
            .chain(continuation.iter().flatten().map(|c| c.chars().count()))
            .chain(header.last().map(|h| h.chars().count()))
            .max()
            .unwrap_or(0);
    }
    render(header, &w, &split_rows, &continuation, indent)
}

/// The items of `cell` (separated by two spaces) packed into lines of at most `room`
/// characters; an item wider than that stays whole on a line of its own. At least one line.
fn wrap_items(cell: &str, room: usize) -> Vec<String> {
    let mut lines: Vec<String> = vec![String::new()];
    for item in cell.split("  ").filter(|s| !s.is_empty()) {
        let cur = lines.last_mut().expect("one line at least");
        let len = cur.chars().count();
        if len == 0 {
            cur.push_str(item);
        } else if len + 2 + item.chars().count() <= room {
            cur.push_str("  ");
            cur.push_str(item);
        } else {
            lines.push(item.to_string());
        }
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fitted_tables_wrap_the_last_column_within_the_width() {
        let rows = vec![
            vec![
                "0".into(),
                "[AB]".into(),
                "A=one item  B=two item  C=three item".into(),
            ],
            vec!["1".into(), "[C.]".into(), "(unused)".into()],
        ];
        let t = table_fit(&["GPU", "bar", "instances"], &rows, 30);
        assert_eq!(
            t,
            "GPU  bar   instances\n---  ----  ------------\n0    [AB]  A=one item\n           B=two item\n           C=three item\n1    [C.]  (unused)\n"
        );
        assert!(t.lines().all(|l| l.chars().count() <= 30));
        // Wide enough: one line per row, as `table` prints it.
        let wide = table_fit(&["GPU", "bar", "instances"], &rows, 200);
        assert_eq!(wide, table(&["GPU", "bar", "instances"], &rows));
    }

    #[test]
    fn an_output_that_names_an_input_is_refused_and_nothing_is_written() {
        let d = tempfile::tempdir().unwrap();
        let (a, b) = (d.path().join("a.json"), d.path().join("b.json"));
        std::fs::write(&a, "input").unwrap();
        let mut inputs = Inputs::default();
        inputs
            .read_text(&a, migopt_models::limits::PLAN_FILE)
            .unwrap();
        let files = [(b.clone(), "b".to_string()), (a.clone(), "new".to_string())];
        let e = write_all(&files, &inputs).unwrap_err().to_string();
        assert!(e.ends_with("it is an input of this command, which the output would replace"));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "input");
        assert!(!b.exists());
        // The same files, for a command that read nothing.
        write_all(&files, &Inputs::default()).unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
    }

    #[test]
    fn outputs_are_all_or_nothing() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a.json");
        std::fs::write(&a, "old").unwrap();
        let notdir = d.path().join("notadir");
        std::fs::write(&notdir, "x").unwrap();
        let none = Inputs::default();
        let e = write_all(
            &[
                (a.clone(), "new".to_string()),
                (notdir.join("x.yaml"), "y".into()),
            ],
            &none,
        )
        .unwrap_err()
        .to_string();
        assert!(e.ends_with("notadir is not a folder"), "{e}");
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "old");
        // New folders are made; nothing is left but the outputs.
        let b = d.path().join("new/sub/b.txt");
        write_all(
            &[(a.clone(), "new".to_string()), (b.clone(), "b".into())],
            &none,
        )
        .unwrap();
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "new");
        assert_eq!(std::fs::read_to_string(&b).unwrap(), "b");
        let names: Vec<_> = std::fs::read_dir(d.path().join("new/sub"))
            .unwrap()
            .collect();
        assert_eq!(names.len(), 1);
        assert!(write_all(&[(d.path().to_path_buf(), String::new())], &none).is_err());
    }
}
