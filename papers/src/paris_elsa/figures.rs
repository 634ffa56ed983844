//! One workload's figures: p99 against offered load for the drawn series, and a drawing of
//! every plan.

use super::measure::drawn;
use super::results::WorkloadRun;
use crate::plot::{self, Chart, Series};
use crate::{Options, Output};
use migopt_models::Error;

/// The p99-vs-load figure and the plan drawings.
pub(super) fn figures(r: &WorkloadRun, _opts: &Options, out: &mut Output) -> Result<String, Error> {
    let fig = |name: &str| format!("figures/{}-{name}.svg", r.id);
    let mut series = Vec::new();
    for (name, k) in drawn(r) {
        let Some(c) = r.plan(name).and_then(|p| p.cell(k)) else {
            continue;
        };
        series.push(Series {
            label: format!("{name} + {}", k.as_str()),
            points: c
                .curve
                .iter()
                .flatten()
                .filter_map(|x| x.p99.map(|v| (x.rate, v)))
                .collect(),
        });
    }
    let title = format!("{}: p99 latency vs offered load", r.id);
    out.files.push((
        fig("p99-vs-load").into(),
        plot::line_chart(&Chart {
            title: &title,
            x_label: "offered load, queries/s",
            y_label: "p99 latency, ms",
            series: &series,
            hline: Some((r.sla, "SLA")),
            log_y: true,
            y_max: Some(r.sla * 20.0),
        })?,
    ));
    let mut md = format!("\n![p99 vs load](figures/{}-p99-vs-load.svg)\n", r.id);
    let mut others = Vec::new();
    for p in &r.plans {
        let Ok(plan) = &p.plan else { continue };
        let models = vec![plan
            .gpus
            .iter()
            .flat_map(|g| &g.layout)
            .map(|a| a.model.to_string())
            .next()
            .unwrap_or_default()];
        out.files.push((
            fig(&format!("plan-{}", p.name)).into(),
            plot::plan_drawing(
                plan,
                &format!(
                    "{}: {} plan ({:.0} q/s fluid)",
                    r.id, p.name, plan.report.objective
                ),
                &models,
            )?,
        ));
        if matches!(p.name, "paris" | "milp") {
            md += &format!("![{0} plan](figures/{1}-plan-{0}.svg)\n", p.name, r.id);
        } else {
            others.push(format!("[{0}](figures/{1}-plan-{0}.svg)", p.name, r.id));
        }
    }
    if !others.is_empty() {
        md += &format!("\nOther plans drawn: {}.\n", others.join(", "));
    }
    Ok(md)
}
