//! `migopt layouts`: every maximal MIG layout of a GPU.

use super::{to_json, CliError};
use crate::out::{slot_bar, table};
use migopt_models::{enumerate_maximal, Catalogue, Layout, LayoutRules};
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct Args {
    /// GPU kind (catalogue name such as H100-80GB, or the name nvidia-smi reports).
    #[arg(long)]
    gpu: String,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
    /// Include double-memory 1g and +me profiles, not only 1g/2g/3g/4g/7g.
    #[arg(long)]
    all_profiles: bool,
    /// Apply the rule of drivers before R510 (no 4g beside 3g).
    #[arg(long)]
    pre_r510: bool,
}

#[derive(Serialize)]
struct Listing<'a> {
    gpu: &'a str,
    rules: LayoutRules,
    count: usize,
    layouts: Vec<Layout>,
}

pub fn run(a: Args) -> Result<(), CliError> {
    let gpu = Catalogue::builtin().gpu(&a.gpu)?;
    let rules = LayoutRules {
        all_profiles: a.all_profiles,
        pre_r510: a.pre_r510,
    };
    let layouts = enumerate_maximal(gpu, rules);
    if a.json {
        crate::say!(
            "{}",
            to_json(&Listing {
                gpu: gpu.name.as_str(),
                rules,
                count: layouts.len(),
                layouts
            })?
        );
        return Ok(());
    }
    crate::sayln!(
        "{}: {} maximal MIG layouts ({} profiles{}); placement = profile@NVML start slot",
        gpu.name,
        layouts.len(),
        if a.all_profiles { "all" } else { "classic" },
        if a.pre_r510 {
            ", drivers before R510"
        } else {
            ""
        }
    );
    let rows: Vec<Vec<String>> = layouts
        .iter()
        .enumerate()
        .map(|(i, l)| {
            let bar = slot_bar(gpu, l, |k| {
                let name = l.instances[k].profile.as_str();
                name.chars().next().unwrap_or('?')
            });
            vec![
                (i + 1).to_string(),
                bar,
                l.instances
                    .iter()
                    .map(|p| format!("{}@{}", p.profile, p.start))
                    .collect::<Vec<_>>()
                    .join(" "),
                if l.idle_slots.is_empty() {
                    "-".into()
                } else {
                    l.idle_slots
                        .iter()
                        .map(|s| s.to_string())
                        .collect::<Vec<_>>()
                        .join(",")
                },
                l.idle_compute.to_string(),
            ]
        })
        .collect();
    crate::say!(
        "{}",
        table(
            &["#", "slots", "instances", "idle slots", "idle GPCs"],
            &rows
        )
    );
    Ok(())
}
