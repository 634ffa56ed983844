//! Integration tests of the planners: one test binary (HiGHS links slowly), one module per
//! concern.

mod data;
mod messages;
mod parvagpu;
mod props;
mod replan;
mod replan_sla;
mod replan_sla_load;
mod report;
