//! `migopt replan`: re-plan a running plan for a new load, re-cutting as few GPUs as
//! possible, with a safe step-by-step transition.

use super::common::{
    check_plan, load_plan, read_plan, CheckFlags, ObjectiveFlag, PlanFlags, SolverFlag,
};
use super::{to_json, CliError};
use crate::out::{table, write_all};
use migopt_models::input::Inputs;
use migopt_models::{Error, Objective, Scenario};
use migopt_solver::replan::{Fate, Replan, ReplanOptions};
use migopt_solver::SolverKind;
use migopt_verify::TargetCheck;
use std::path::{Path, PathBuf};

#[derive(clap::Args, Debug)]
pub struct Args {
    /// The plan in service now (JSON written by `migopt plan --out` or `migopt replan --out`).
    current: PathBuf,
    /// The scenario with the new load (rate targets; under max-load and sla-capacity, its
    /// rates or shares give the traffic mix).
    scenario: PathBuf,
    /// Idle GPUs a transition may borrow to keep every model's capacity (the target uses no
    /// more GPUs: a change swapped onto a spare leaves the GPU it replaced idle).
    #[arg(long, default_value_t = 0)]
    spare_gpus: u32,
    /// min-gpus: extra GPUs beyond the fewest the target may use when that re-cuts fewer GPUs.
    #[arg(long, default_value_t = 0)]
    gpu_slack: u32,
    /// max-load: the fraction of the most load (the from-scratch optimum on the current
    /// GPUs) the target may give up when that re-cuts fewer GPUs (0.02: up to 2% less).
    #[arg(long, default_value_t = 0.0)]
    load_slack: f64,
    /// The scenario the current plan serves (its rates give the capacity every model keeps
    /// during the transition: min of old and new). Default: the scenario recorded in the
    /// plan, else the plan's provisioned rates.
    #[arg(long)]
    old_scenario: Option<PathBuf>,
    #[command(flatten)]
    solver: SolverFlag,
    #[command(flatten)]
    flags: PlanFlags,
    // The target's check by simulation at its promised load (min-gpus: the new rates;
    // max-load: its λ at the new shares): always with --solver sla and with --objective
    // sla-capacity (the models that miss are cut and the re-plan runs again, as `plan
    // --solver sla --verify` does; under max-load a cut lowers the λ the target promises),
    // once with --verify otherwise.
    #[command(flatten)]
    check: CheckFlags,
    /// Print the re-plan (target, per-GPU fates, tiers, transition) as JSON.
    #[arg(long)]
    json: bool,
    /// Write the target plan as JSON here (input of `migopt simulate` and of the next replan).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write one mig-parted config per transition step into this folder (step-01.yaml, ...);
    /// the step files of an earlier transition that these do not replace are removed.
    #[arg(long)]
    mig_parted_dir: Option<PathBuf>,
}

/// The old rates, in the new scenario's model order, when the old scenario is known.
fn old_rates(old: &Scenario, new: &Scenario) -> Option<Vec<f64>> {
    let rates = old.rates()?;
    Some(
        new.models
            .iter()
            .map(|m| {
                old.models
                    .iter()
                    .position(|o| o.name == m.name)
                    .map_or(0.0, |i| rates[i])
            })
            .collect(),
    )
}

pub fn run(a: Args) -> Result<(), CliError> {
    let path = a.scenario.clone();
    run_on(a).map_err(|e| e.in_scenario(Some(&path)))
}

fn run_on(a: Args) -> Result<(), CliError> {
    a.check.check_threads()?;
    let mut inputs = Inputs::default();
    let scenario = Scenario::load_recording(&a.scenario, &mut inputs)?;
    let (current, old) = current_plan(&a, &scenario, &mut inputs)?;
    same_gpu_kind(&a.current, &current, &scenario, &mut inputs)?;
    // `--objective sla-capacity` is max-load with the SLA-aware target (`--solver sla`
    // unless told) and its check by simulation, as `plan` reads it.
    let sla_objective = a.flags.objective == Some(ObjectiveFlag::SlaCapacity);
    let solver = replan_solver(&a, sla_objective)?;
    let opts = replan_options(&a, &scenario, old.as_ref())?;
    let mut check_flags = a.check.clone();
    check_flags.verify |= sla_objective;
    let (mut r, check) = solve(&check_flags, &current, &scenario, solver, &opts)?;
    r.target.scenario_path = Some(super::common::recorded_path(&a.scenario, a.out.as_deref()));
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    if let Some(p) = &a.out {
        files.push((p.clone(), to_json(&r.target)?));
    }
    if let Some(dir) = &a.mig_parted_dir {
        files.extend(step_yamls(&r, dir)?);
    }
    write_all(&files, &inputs)?;
    let stale = match &a.mig_parted_dir {
        Some(dir) => remove_stale_steps(dir, &files, &inputs)?,
        None => Vec::new(),
    };
    if a.json {
        let json = match check {
            Some(check) => to_json(&migopt_verify::CheckedReplan { replan: r, check })?,
            None => to_json(&r)?,
        };
        crate::say!("{json}");
    } else {
        crate::say!("{}", render(&r));
        if let Some(c) = &check {
            crate::say!("{}", render_check(c));
        }
        for (p, _) in &files {
            crate::sayln!("wrote {}", p.display());
        }
        for p in &stale {
            crate::sayln!("removed {} (a step of an earlier transition)", p.display());
        }
    }
    Ok(())
}

/// The plan in service (its recorded scenario path dropped) and the scenario it serves,
/// when known: `--old-scenario`, else the one recorded in the plan.
fn current_plan(
    a: &Args,
    scenario: &Scenario,
    inputs: &mut Inputs,
) -> Result<(migopt_models::Plan, Option<Scenario>), CliError> {
    let (mut current, old) = match &a.old_scenario {
        Some(p) => {
            let (plan, old) = load_plan(&a.current, Some(p), inputs)?;
            (plan, Some(old))
        }
        None => match load_plan(&a.current, None, inputs) {
            Ok((plan, old)) => (plan, Some(old)),
            // No readable recorded scenario: the plan's provisioned rates stand in.
            Err(_) => (load_current(&a.current, scenario, inputs)?, None),
        },
    };
    current.scenario_path = None;
    Ok((current, old))
}

/// The plan in service, checked against the new scenario except for the instances the
/// re-planner re-cuts (see [`served_part`]), and read as a plan of the old server: a model
/// the new scenario adds has no instance yet, and a max-load plan lists the GPUs it was
/// planned on, not the new `gpu.count` (the re-planner plans the new server).
fn load_current(
    path: &Path,
    scenario: &Scenario,
    inputs: &mut Inputs,
) -> Result<migopt_models::Plan, CliError> {
    let (plan, text) = read_plan(path, inputs)?;
    let served = served_part(&plan, scenario);
    check_plan(&served, &text, path, &served_view(&served, scenario))?;
    Ok(plan)
}

/// The part of the plan in service the new scenario still describes: without the
/// instances of a model it dropped or on a size the model's new profile no longer measures
/// (a scenario or profile CSV edited in place: the re-planner re-cuts their GPUs), and
/// without the routes and provisioned rates of a model it dropped or left with no instance
/// by that.
fn served_part(plan: &migopt_models::Plan, scenario: &Scenario) -> migopt_models::Plan {
    use std::collections::HashSet;
    let mut served = plan.clone();
    for g in &mut served.gpus {
        g.layout.retain(|a| scenario.describes(a));
    }
    let had: HashSet<String> = plan.instances().map(|(_, a)| a.model.to_string()).collect();
    let left: HashSet<String> = served
        .instances()
        .map(|(_, a)| a.model.to_string())
        .collect();
    let keep = |m: &str| scenario.model(m).is_some() && (left.contains(m) || !had.contains(m));
    served.routes.retain(|r| keep(r.model.as_str()));
    served.model_rates.retain(|r| keep(r.model.as_str()));
    served
}

/// The new scenario as the plan in service `served` (its dropped models gone) is checked
/// against: only the models it names (an instance, a route or a provisioned rate), on as
/// many GPUs as it lists.
fn served_view(served: &migopt_models::Plan, scenario: &Scenario) -> Scenario {
    let names: std::collections::HashSet<&str> = served
        .instances()
        .map(|(_, a)| a.model.as_str())
        .chain(served.routes.iter().map(|r| r.model.as_str()))
        .chain(served.model_rates.iter().map(|r| r.model.as_str()))
        .collect();
    let mut view = scenario.clone();
    view.models.retain(|m| names.contains(m.name.as_str()));
    let listed = u32::try_from(served.gpus.len()).unwrap_or(u32::MAX);
    view.gpu_count = listed.max(1);
    view
}

/// The plan in service and the new scenario are for the same GPU kind; if not, the error
/// names the plan file, its line and field (the re-planner's own check names neither).
fn same_gpu_kind(
    path: &Path,
    current: &migopt_models::Plan,
    scenario: &Scenario,
    inputs: &mut Inputs,
) -> Result<(), CliError> {
    if current.gpu == scenario.gpu {
        return Ok(());
    }
    let text = inputs.read_text(path, migopt_models::limits::PLAN_FILE)?;
    let e = Error::field(
        migopt_models::Origin::file(path),
        "gpu",
        format!(
            "the plan is for {} but the new scenario `{}` is for {}",
            current.gpu, scenario.name, scenario.gpu
        ),
    );
    Err(migopt_models::plan::locate(e, &text).into())
}

/// The re-planner's solver (`sla` by default under sla-capacity, else `milp`), after
/// checking it has a re-planner and that `--load-slack` is in [0, 1).
fn replan_solver(a: &Args, sla_objective: bool) -> Result<SolverKind, CliError> {
    let default_solver = if sla_objective { "sla" } else { "milp" };
    let solver: SolverKind = a
        .solver
        .solver
        .as_deref()
        .unwrap_or(default_solver)
        .parse()?;
    if !matches!(solver, SolverKind::Milp | SolverKind::Sla) {
        return Err(CliError::Input(Error::Invalid(format!(
            "replan: --solver {solver} has no re-planner; use milp or sla"
        ))));
    }
    if !(0.0..1.0).contains(&a.load_slack) {
        return Err(CliError::Input(Error::Invalid(format!(
            "--load-slack {} must be in [0, 1)",
            migopt_models::limits::num(a.load_slack)
        ))));
    }
    Ok(solver)
}

/// The re-plan's options: the plan options and check the flags give for the new scenario,
/// the slacks, and (under min-gpus, the old scenario known) the rates every model keeps.
fn replan_options(
    a: &Args,
    scenario: &Scenario,
    old: Option<&Scenario>,
) -> Result<ReplanOptions, CliError> {
    // The objective the new scenario asks for unless told: rates → min-gpus, shares →
    // max-load.
    let mut plan = a.flags.options(scenario)?;
    a.check.apply(&mut plan)?;
    slack_applies(a, plan.objective)?;
    // Under min-gpus every model keeps min(old rate, new rate); under max-load, min(its
    // rate in the current plan, in the target) (the re-planner's default).
    let required = match (plan.objective, scenario.rates()) {
        (Objective::MinGpus, Some(new_rates)) => old
            .and_then(|o| old_rates(o, scenario))
            .map(|o| o.iter().zip(&new_rates).map(|(a, b)| a.min(*b)).collect()),
        _ => None,
    };
    Ok(ReplanOptions {
        plan,
        spare_gpus: a.spare_gpus,
        gpu_slack: a.gpu_slack,
        required,
        load_slack: a.load_slack,
    })
}

/// Each slack flag belongs to one objective: `--gpu-slack` to min-gpus, `--load-slack` to
/// max-load; given to the other it would be ignored, so it is refused instead.
fn slack_applies(a: &Args, objective: Objective) -> Result<(), CliError> {
    let misplaced = match objective {
        Objective::MinGpus if a.load_slack != 0.0 => {
            Some(("--load-slack", "min-gpus", "--gpu-slack"))
        }
        Objective::MaxLoad if a.gpu_slack != 0 => Some(("--gpu-slack", "max-load", "--load-slack")),
        _ => None,
    };
    match misplaced {
        Some((flag, objective, other)) => Err(CliError::Input(Error::Invalid(format!(
            "{flag} does not apply to a {objective} re-plan (its slack is {other})"
        )))),
        None => Ok(()),
    }
}

/// The re-plan, with its target's check by simulation: always with the sla solver (its loop
/// cuts the models that miss and re-plans), once with `--verify` otherwise.
fn solve(
    flags: &CheckFlags,
    current: &migopt_models::Plan,
    scenario: &Scenario,
    solver: SolverKind,
    opts: &ReplanOptions,
) -> Result<(Replan, Option<TargetCheck>), CliError> {
    if solver == SolverKind::Sla || flags.verify {
        let mut check = flags.check()?;
        check.capacity = false;
        let c = migopt_verify::replan_checked(current, scenario, solver, opts, &check)?;
        Ok((c.replan, Some(c.check)))
    } else {
        let r = migopt_solver::replan::replan_with(current, scenario, solver, opts)?;
        Ok((r, None))
    }
}

/// The target's check by simulation: headline and per-model table.
fn render_check(c: &TargetCheck) -> String {
    super::plan::check_line(&c.scheduler, &c.rounds, c.verified)
        + &super::plan::model_checks(&c.models)
}

/// One mig-parted config per step: the GPUs re-cut in it, each with its new layout.
fn step_yamls(r: &Replan, dir: &Path) -> Result<Vec<(PathBuf, String)>, CliError> {
    let mut out = Vec::new();
    for (i, s) in r.transition.steps.iter().enumerate() {
        let mut p = r.target.clone();
        p.gpus = s
            .gpus
            .iter()
            .map(|g| migopt_models::GpuPlan {
                index: g.gpu,
                layout: g.layout.clone(),
            })
            .collect();
        let body = p.to_mig_parted_yaml()?;
        let head = format!(
            "{STEP_HEAD}{} of {}: drain GPUs {}, apply, reload.\n",
            i + 1,
            r.transition.steps.len(),
            s.gpus
                .iter()
                .map(|g| format!("{} ({})", g.gpu, g.kind))
                .collect::<Vec<_>>()
                .join(", ")
        );
        out.push((dir.join(format!("step-{:02}.yaml", i + 1)), head + &body));
    }
    Ok(out)
}

/// The first line of every step file [`step_yamls`] writes.
const STEP_HEAD: &str = "# Transition step ";

/// Removes the step files of an earlier transition from `dir` that this one did not
/// replace (`step-NN.yaml` beyond its last step, every one for a transition of no step), so
/// that applying the folder's steps in order applies this transition only. Only files
/// migopt wrote (their first line is a step's), never an input of this command, are
/// removed; the paths removed.
fn remove_stale_steps(
    dir: &Path,
    written: &[(PathBuf, String)],
    inputs: &Inputs,
) -> Result<Vec<PathBuf>, CliError> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut stale = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        let numbered = name
            .strip_prefix("step-")
            .and_then(|n| n.strip_suffix(".yaml"))
            .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
        let replaced = written.iter().any(|(w, _)| w.file_name() == p.file_name());
        if !numbered || replaced || inputs.contains(&p) {
            continue;
        }
        if starts_with_step_head(&p) {
            std::fs::remove_file(&p).map_err(|e| Error::io(&p, e))?;
            stale.push(p);
        }
    }
    stale.sort();
    Ok(stale)
}

/// Whether the file at `p` begins as a step file migopt wrote (its first bytes only read).
fn starts_with_step_head(p: &Path) -> bool {
    use std::io::Read;
    let mut head = Vec::new();
    std::fs::File::open(p)
        .and_then(|f| f.take(STEP_HEAD.len() as u64).read_to_end(&mut head))
        .is_ok_and(|_| head == STEP_HEAD.as_bytes())
}

/// The human report.
pub fn render(r: &Replan) -> String {
    let mut o = header(r);
    o += &tiers(r);
    o += "\n";
    o += &fates(r);
    o += &transition(r);
    o
}

/// What was re-planned and the target's headline figures.
fn header(r: &Replan) -> String {
    let mut o = format!(
        "re-plan of scenario {} · {}{} · status {}\n",
        r.target.scenario,
        r.target.gpu,
        if r.target.objective_kind == Objective::MaxLoad {
            " · max-load"
        } else {
            ""
        },
        r.status.as_str()
    );
    if r.target.objective_kind == Objective::MaxLoad {
        o += &format!(
            "load {:.1} queries/s (bound {}) · ",
            r.target.report.objective,
            r.target
                .report
                .bound
                .map_or("-".to_string(), |b| format!("{b:.1}"))
        );
    }
    o += &format!(
        "GPUs used {} · re-cut or added {} · instances started {} · solve {:.3} s\n\n",
        r.gpus_used, r.gpus_changed, r.instances_started, r.target.report.solve_seconds
    );
    o
}

/// The lexicographic tiers: value, bound, gap, status, time.
fn tiers(r: &Replan) -> String {
    // Counts are whole; loads and the headroom tie-break are not.
    let digits = |name: &str| match name {
        "headroom" => 3,
        "load" | "load-max" => 1,
        _ => 0,
    };
    let rows: Vec<Vec<String>> = r
        .tiers
        .iter()
        .map(|t| {
            let d = digits(&t.name);
            vec![
                t.name.clone(),
                format!("{:.*}", d, t.objective),
                format!("{:.*}", d, t.bound),
                format!("{:.3}%", t.gap * 100.0),
                t.status.as_str().into(),
                format!("{:.3}", t.seconds),
            ]
        })
        .collect();
    table(
        &["tier", "value", "bound", "gap", "status", "seconds"],
        &rows,
    )
}

/// The GPUs that change: fate, before, after.
fn fates(r: &Replan) -> String {
    let short = |l: &[migopt_models::Assignment]| {
        if l.is_empty() {
            "-".to_string()
        } else {
            l.iter()
                .map(|a| format!("{}@{} {}", a.profile, a.start, a.model))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let rows: Vec<Vec<String>> = r
        .gpus
        .iter()
        .filter(|g| g.fate != Fate::Kept)
        .map(|g| {
            vec![
                g.gpu.to_string(),
                g.fate.as_str().into(),
                short(&g.before),
                short(&g.after),
            ]
        })
        .collect();
    let kept = r.gpus.iter().filter(|g| g.fate == Fate::Kept).count();
    format!("{kept} GPUs kept as they are; the others:\n")
        + &table(&["GPU", "fate", "before", "after"], &rows)
}

/// The spare GPUs a transition borrows, and whether they are proven the fewest.
fn spares_line(t: &migopt_solver::replan::Transition) -> String {
    if t.spares_used.is_empty() {
        return String::new();
    }
    format!(
        ", spare GPUs borrowed: {:?}, {}",
        t.spares_used,
        if t.spares_minimal {
            "the fewest (proven)".to_string()
        } else {
            format!(
                "not proven the fewest (lower bound {})",
                t.spares_lower_bound
            )
        }
    )
}

/// The transition's steps, each with its tightest model.
fn transition(r: &Replan) -> String {
    let t = &r.transition;
    let mut o = format!(
        "\ntransition: {} step(s), {} (lower bound {}){}\n",
        t.steps.len(),
        if t.minimal {
            "minimal"
        } else {
            "not proven minimal"
        },
        t.lower_bound,
        spares_line(t)
    );
    for (i, s) in t.steps.iter().enumerate() {
        let worst = t.tightest(i).map(|(m, r)| (r, &t.models[m]));
        o += &format!(
            "  step {}: {}{}\n",
            i + 1,
            s.gpus
                .iter()
                .map(|g| format!("GPU {} {}", g.gpu, g.kind))
                .collect::<Vec<_>>()
                .join(", "),
            worst
                .filter(|w| w.0.is_finite())
                .map(|(r, n)| format!(
                    " · tightest model {n} at {:.0}% of its required capacity",
                    r * 100.0
                ))
                .unwrap_or_default()
        );
    }
    o
}
