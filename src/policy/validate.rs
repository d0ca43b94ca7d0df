//! Checks a schema cannot express: a cron that parses, a real time zone, durations that
//! make sense together, exactly-one-of choices. Pure: the controllers turn the problems
//! into a condition (reason `InvalidSpec`) whose message names each field.

use std::fmt;
use std::time::Duration;

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

use crate::api::backup_store::{BackupStoreSpec, SseMode};
use crate::api::recovery_plan::{BackupPolicy, RecoveryPlanSpec};

/// One invalid field and what would be valid.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldProblem {
    /// Path of the field, e.g. `spec.backup.schedule`.
    pub field: String,
    /// What is wrong and what would be valid.
    pub message: String,
}

impl FieldProblem {
    fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        FieldProblem {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Joins problems into one condition message.
pub fn describe(problems: &[FieldProblem]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

/// Parses a duration such as `500ms`, `30s`, `5m`, `1h30m`, `7d`.
pub fn parse_duration(field: &str, value: &str) -> Result<Duration, FieldProblem> {
    humantime::parse_duration(value).map_err(|err| {
        FieldProblem::new(
            field,
            format!("invalid duration {value:?} ({err}); use e.g. 500ms, 30s, 5m, 1h30m or 7d"),
        )
    })
}

/// Parses a cron schedule: 5 fields, or 6 with seconds first, or a nickname like `@hourly`.
pub fn parse_cron(field: &str, schedule: &str) -> Result<Cron, FieldProblem> {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
        .parse(schedule)
        .map_err(|err| {
            FieldProblem::new(
                field,
                format!("invalid cron schedule {schedule:?} ({err}); use 5 fields like \"0 * * * *\" or a nickname like @hourly"),
            )
        })
}

/// Parses an IANA time zone name such as `Europe/Berlin` or `UTC`.
pub fn parse_time_zone(field: &str, name: &str) -> Result<chrono_tz::Tz, FieldProblem> {
    name.parse::<chrono_tz::Tz>().map_err(|_| {
        FieldProblem::new(
            field,
            format!("unknown time zone {name:?}; use an IANA name such as UTC or Europe/Berlin"),
        )
    })
}

/// A RecoveryPlan's spec, validated once into the typed values every controller uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanSettings {
    pub rpo: Duration,
    pub rto: Duration,
    pub probe_interval: Duration,
    pub failure_threshold: u32,
    /// `maxDataLoss`, or the RPO when absent.
    pub max_data_loss: Duration,
    /// Whether lifeboat writes its heartbeat row on the primary.
    pub heartbeat: bool,
}

impl PlanSettings {
    /// How long replicas must have heard nothing before they confirm a primary failure.
    pub fn confirmation_window(&self) -> Duration {
        self.probe_interval * self.failure_threshold.max(1)
    }

    /// The limit of one probe: a hung member must not hold a round longer than an interval.
    pub fn probe_timeout(&self) -> Duration {
        self.probe_interval
            .clamp(Duration::from_millis(200), Duration::from_secs(5))
    }
}

/// Validates `spec` into [`PlanSettings`], or every problem found (never a silent default).
pub fn plan_settings(spec: &RecoveryPlanSpec) -> Result<PlanSettings, Vec<FieldProblem>> {
    let problems = validate_plan(spec);
    if !problems.is_empty() {
        return Err(problems);
    }
    let parse = |field: &str, value: &str| parse_duration(field, value).map_err(|p| vec![p]);
    let rpo = parse("spec.objectives.rpo", &spec.objectives.rpo)?;
    Ok(PlanSettings {
        rpo,
        rto: parse("spec.objectives.rto", &spec.objectives.rto)?,
        probe_interval: parse("spec.failover.probeInterval", &spec.failover.probe_interval)?,
        failure_threshold: spec.failover.failure_threshold.max(1),
        max_data_loss: match &spec.failover.max_data_loss {
            Some(max) => parse("spec.failover.maxDataLoss", max)?,
            None => rpo,
        },
        heartbeat: spec.failover.heartbeat,
    })
}

/// Every problem in a RecoveryPlan spec that the API server's schema cannot catch.
pub fn validate_plan(spec: &RecoveryPlanSpec) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    let rpo = collect(
        &mut problems,
        parse_duration("spec.objectives.rpo", &spec.objectives.rpo),
    );
    if let Some(rto) = collect(
        &mut problems,
        parse_duration("spec.objectives.rto", &spec.objectives.rto),
    ) && rto.is_zero()
    {
        problems.push(FieldProblem::new("spec.objectives.rto", "must be greater than 0"));
    }

    match (&spec.members.selector, &spec.members.endpoints) {
        (Some(_), Some(_)) | (None, None) => problems.push(FieldProblem::new(
            "spec.members",
            "set exactly one of selector or endpoints",
        )),
        (Some(selector), None) => {
            let empty_labels = selector.match_labels.as_ref().is_none_or(|l| l.is_empty());
            let empty_exprs = selector.match_expressions.as_ref().is_none_or(|e| e.is_empty());
            if empty_labels && empty_exprs {
                problems.push(FieldProblem::new(
                    "spec.members.selector",
                    "an empty selector would match every pod in the namespace; set matchLabels or matchExpressions",
                ));
            }
        }
        (None, Some(endpoints)) => {
            let mut seen = std::collections::HashSet::new();
            for (i, endpoint) in endpoints.iter().enumerate() {
                if !seen.insert(endpoint.name.as_str()) {
                    problems.push(FieldProblem::new(
                        format!("spec.members.endpoints[{i}].name"),
                        format!("duplicate member name {:?}; names must be unique", endpoint.name),
                    ));
                }
            }
        }
    }

    let failover = &spec.failover;
    if let Some(interval) = collect(
        &mut problems,
        parse_duration("spec.failover.probeInterval", &failover.probe_interval),
    ) && interval < Duration::from_millis(100)
    {
        problems.push(FieldProblem::new(
            "spec.failover.probeInterval",
            "must be at least 100ms",
        ));
    }
    if let Some(max) = &failover.max_data_loss {
        let max = collect(&mut problems, parse_duration("spec.failover.maxDataLoss", max));
        if let (Some(max), Some(rpo)) = (max, rpo)
            && max > rpo
        {
            problems.push(FieldProblem::new(
                "spec.failover.maxDataLoss",
                format!(
                    "{max:?} is larger than the RPO {rpo:?}; a failover could then break the promise the plan makes"
                ),
            ));
        }
    }

    if let Some(backup) = &spec.backup {
        problems.extend(validate_backup_policy(backup));
    }
    problems
}

fn validate_backup_policy(backup: &BackupPolicy) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    collect(&mut problems, parse_cron("spec.backup.schedule", &backup.schedule));
    collect(
        &mut problems,
        parse_time_zone("spec.backup.timeZone", &backup.time_zone),
    );
    let r = &backup.retention;
    if r.keep_last + r.keep_hourly + r.keep_daily + r.keep_weekly + r.keep_monthly == 0 {
        problems.push(FieldProblem::new(
            "spec.backup.retention",
            "keeps nothing; set at least one of keepLast, keepHourly, keepDaily, keepWeekly, keepMonthly above 0",
        ));
    }
    problems
}

/// Every problem in a BackupStore spec that the schema cannot catch.
pub fn validate_store(spec: &BackupStoreSpec) -> Vec<FieldProblem> {
    let mut problems = Vec::new();
    if let Some(sse) = &spec.s3.server_side_encryption
        && sse.mode == SseMode::Aes256
        && sse.kms_key_id.is_some()
    {
        problems.push(FieldProblem::new(
            "spec.s3.serverSideEncryption.kmsKeyId",
            "only valid with mode aws:kms; remove it or set mode: aws:kms",
        ));
    }
    if let Some(encryption) = &spec.encryption {
        for (i, recipient) in encryption.age_recipients.iter().enumerate() {
            if recipient.parse::<age::x25519::Recipient>().is_err() {
                problems.push(FieldProblem::new(
                    format!("spec.encryption.ageRecipients[{i}]"),
                    format!("{recipient:?} is not an age X25519 recipient; expected a public key starting with age1"),
                ));
            }
        }
    }
    problems
}

fn collect<T>(problems: &mut Vec<FieldProblem>, result: Result<T, FieldProblem>) -> Option<T> {
    result.map_err(|p| problems.push(p)).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::recovery_plan::RecoveryPlanSpec;

    fn plan(yaml: &str) -> RecoveryPlanSpec {
        serde_yaml::from_str(yaml).expect("test spec parses")
    }

    const VALID: &str = r#"
engine: postgres
members: {selector: {matchLabels: {app: shop-db}}}
credentialsSecret: {name: shop-db-credentials}
writerService: shop-db
objectives: {rpo: 5m, rto: 1m}
backup: {schedule: "*/15 * * * *", timeZone: Europe/Berlin, databases: [orders], store: s3}
failover: {maxDataLoss: 30s}
"#;

    fn fields(problems: &[FieldProblem]) -> Vec<&str> {
        problems.iter().map(|p| p.field.as_str()).collect()
    }

    #[test]
    fn valid_plan_has_no_problems() {
        assert_eq!(validate_plan(&plan(VALID)), vec![]);
    }

    #[test]
    fn cron_that_does_not_parse_names_the_field() {
        let spec = plan(&VALID.replace("*/15 * * * *", "61 * * * *"));
        let problems = validate_plan(&spec);
        assert_eq!(fields(&problems), vec!["spec.backup.schedule"]);
        assert!(problems[0].message.contains("61 * * * *"), "{}", problems[0]);
    }

    #[test]
    fn cron_accepts_seconds_and_nicknames() {
        assert!(parse_cron("f", "*/5 * * * * *").is_ok());
        assert!(parse_cron("f", "@hourly").is_ok());
        assert!(parse_cron("f", "0 3 * * mon").is_ok());
    }

    #[test]
    fn unknown_time_zone_is_reported() {
        let problems = validate_plan(&plan(&VALID.replace("Europe/Berlin", "Mars/Olympus")));
        assert_eq!(fields(&problems), vec!["spec.backup.timeZone"]);
    }

    #[test]
    fn durations_parse_in_every_unit() {
        for (text, ms) in [
            ("500ms", 500),
            ("30s", 30_000),
            ("5m", 300_000),
            ("1h30m", 5_400_000),
            ("1d", 86_400_000),
        ] {
            assert_eq!(parse_duration("f", text).map(|d| d.as_millis()), Ok(ms), "{text}");
        }
        assert_eq!(
            parse_duration("spec.x", "5 parsecs").map_err(|p| p.field),
            Err("spec.x".to_string())
        );
    }

    #[test]
    fn members_need_exactly_one_source() {
        let both = VALID.replace(
            "members: {selector: {matchLabels: {app: shop-db}}}",
            "members: {selector: {matchLabels: {app: a}}, endpoints: [{name: a, host: h, port: 1}]}",
        );
        assert_eq!(fields(&validate_plan(&plan(&both))), vec!["spec.members"]);
        let empty_selector = VALID.replace("{matchLabels: {app: shop-db}}", "{}");
        assert_eq!(
            fields(&validate_plan(&plan(&empty_selector))),
            vec!["spec.members.selector"]
        );
        let duplicate = VALID.replace(
            "members: {selector: {matchLabels: {app: shop-db}}}",
            "members: {endpoints: [{name: a, host: h, port: 1}, {name: a, host: i, port: 1}]}",
        );
        assert_eq!(
            fields(&validate_plan(&plan(&duplicate))),
            vec!["spec.members.endpoints[1].name"]
        );
    }

    #[test]
    fn max_data_loss_above_rpo_is_refused() {
        let problems = validate_plan(&plan(&VALID.replace("maxDataLoss: 30s", "maxDataLoss: 10m")));
        assert_eq!(fields(&problems), vec!["spec.failover.maxDataLoss"]);
    }

    #[test]
    fn probe_interval_too_short_and_retention_keeping_nothing() {
        let spec = VALID
            .replace("failover: {maxDataLoss: 30s}", "failover: {probeInterval: 10ms}")
            .replace("store: s3}", "store: s3, retention: {keepLast: 0}}");
        let problems = validate_plan(&plan(&spec));
        assert_eq!(
            fields(&problems),
            vec!["spec.failover.probeInterval", "spec.backup.retention"]
        );
    }

    #[test]
    fn store_checks_kms_key_and_age_recipients() {
        let spec: BackupStoreSpec = serde_yaml::from_str(
            r#"
s3: {bucket: backups, serverSideEncryption: {mode: AES256, kmsKeyId: k}}
encryption: {ageRecipients: ["age1notakey"]}
"#,
        )
        .expect("parses");
        let problems = validate_store(&spec);
        assert_eq!(
            fields(&problems),
            vec![
                "spec.s3.serverSideEncryption.kmsKeyId",
                "spec.encryption.ageRecipients[0]"
            ]
        );
        let good: BackupStoreSpec = serde_yaml::from_str("s3: {bucket: backups}").expect("parses");
        assert_eq!(validate_store(&good), vec![]);
    }
}
