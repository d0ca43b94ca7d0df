//! `lifeboat status`: one line per RecoveryPlan saying whether its promise holds.

use kube::Api;
use kube::api::ListParams;

use super::CliError;
use crate::api::RecoveryPlan;
use crate::api::common::Condition;

/// Arguments of `lifeboat status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// Only this namespace. Absent: every namespace.
    #[arg(long, short = 'n', env = "LIFEBOAT_NAMESPACE")]
    pub namespace: Option<String>,
}

pub async fn run(args: StatusArgs) -> Result<(), CliError> {
    let client = kube::Client::try_default().await.map_err(|source| CliError::Kube {
        context: "loading kubeconfig".into(),
        source,
    })?;
    let api: Api<RecoveryPlan> = match &args.namespace {
        Some(ns) => Api::namespaced(client, ns),
        None => Api::all(client),
    };
    let plans = api
        .list(&ListParams::default())
        .await
        .map_err(|source| CliError::Kube {
            context: "listing RecoveryPlans".into(),
            source,
        })?;
    print!("{}", render(&plans.items));
    Ok(())
}

/// Renders the plans as an aligned table. Pure, so it is tested directly.
pub fn render(plans: &[RecoveryPlan]) -> String {
    let header = [
        "NAMESPACE",
        "NAME",
        "ENGINE",
        "PRIMARY",
        "RPO",
        "ACHIEVED",
        "RPO-MET",
        "RTO",
        "EST-RTO",
        "RTO-MET",
        "MAX-LAG",
        "LAST-BACKUP",
        "READY",
    ];
    let mut rows: Vec<Vec<String>> = vec![header.iter().map(|s| s.to_string()).collect()];
    for plan in plans {
        let status = plan.status.clone().unwrap_or_default();
        let max_lag = status
            .members
            .iter()
            .filter_map(|m| m.lag_seconds)
            .fold(None, |acc: Option<f64>, lag| Some(acc.map_or(lag, |a| a.max(lag))));
        rows.push(vec![
            plan.metadata.namespace.clone().unwrap_or_default(),
            plan.metadata.name.clone().unwrap_or_default(),
            plan.spec.engine.to_string(),
            status.primary.clone().unwrap_or_else(|| "-".into()),
            plan.spec.objectives.rpo.clone(),
            seconds(status.achieved_rpo_seconds),
            condition(&status.conditions, "RpoMet"),
            plan.spec.objectives.rto.clone(),
            seconds(status.estimated_rto_seconds),
            condition(&status.conditions, "RtoMet"),
            seconds(max_lag),
            status
                .last_backup
                .as_ref()
                .and_then(|b| b.completion_time)
                .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_else(|| "never".into()),
            condition(&status.conditions, "Ready"),
        ]);
    }
    let widths: Vec<usize> = (0..header.len())
        .map(|c| rows.iter().map(|r| r[c].len()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row.iter().zip(&widths).map(|(cell, w)| format!("{cell:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn seconds(value: Option<f64>) -> String {
    value.map_or_else(|| "unknown".into(), |s| format!("{s:.0}s"))
}

fn condition(conditions: &[Condition], kind: &str) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == kind)
        .map_or_else(|| "Unknown".into(), |c| c.status.clone())
}
