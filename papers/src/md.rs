//! Tiny writers for the two output formats: CSV (every number) and Markdown tables (the
//! ones a reader looks at). Both render to strings; nothing touches the disk here.

/// Renders a Markdown table.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = format!(
        "| {} |\n|{}|\n",
        header.join(" | "),
        header.iter().map(|_| "---").collect::<Vec<_>>().join("|")
    );
    for r in rows {
        s += &format!("| {} |\n", r.join(" | "));
    }
    s
}

/// Renders CSV with a header; fields are quoted by the csv crate where needed.
pub fn csv(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    // Writing to memory cannot fail.
    let _ = w.write_record(header);
    for r in rows {
        let _ = w.write_record(r);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

/// A number with `d` decimals, or `-` when absent or not finite.
pub fn num(v: Option<f64>, d: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.d$}"),
        _ => "-".into(),
    }
}

/// `mean ± half-width` from an estimate.
pub fn pm(e: &migopt_models::report::Estimate, d: usize) -> String {
    e.fmt_pm(d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn tables_render() {
        let t = super::table(&["a", "b"], &[vec!["1".into(), "2".into()]]);
        assert_eq!(t, "| a | b |\n|---|---|\n| 1 | 2 |\n");
        let c = super::csv(&["a", "b"], &[vec!["x,y".into(), "2".into()]]);
        assert_eq!(c, "a,b\n\"x,y\",2\n");
    }
}
