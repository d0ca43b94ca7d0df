//! `make demo` as a test: the demo binary runs end to end and its report says the
//! restore was verified and the shop could not write for at most 5 s (the acceptance
//! for default settings: probe 1 s, failure threshold 3).

use std::path::PathBuf;
use std::process::Command;

#[test]
fn demo_runs_end_to_end_and_reports_the_truth() {
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_lifeboat-demo"));
    let lifeboat = exe.parent().expect("bin dir").join("lifeboat");
    if !lifeboat.exists() {
        // `cargo test -p lifeboat-testkit` alone does not build the lifeboat binary.
        let status = Command::new(env!("CARGO"))
            .args(["build", "-q", "-p", "lifeboat", "--bin", "lifeboat"])
            .status()
            .expect("cargo");
        assert!(status.success(), "building lifeboat");
    }
    let out = Command::new(&exe).output().expect("demo runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("automatic failover Completed") && stdout.contains("Summary"),
        "{stdout}"
    );
    let report_path = lifeboat_testkit::tools::repo_root().join("target/demo/report.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report_path).expect("report.json")).expect("json");
    for key in [
        "backup_seconds",
        "backup_bytes",
        "failover_rto_seconds",
        "acknowledged_orders",
        "lost_acknowledged_orders",
        "restore_seconds",
        "restore_verified",
    ] {
        assert!(!report[key].is_null(), "report.json has {key}: {report}");
    }
    assert_eq!(report["restore_verified"], true);
    assert!(report["backup_bytes"].as_i64().is_some_and(|b| b > 0));
    assert!(report["acknowledged_orders"].as_i64().is_some_and(|n| n > 100));
    let unavailable = report["failover_rto_seconds"].as_f64().expect("number");
    assert!(
        unavailable > 0.0 && unavailable <= 5.0,
        "shop-observed write unavailability {unavailable}s, objective: at most 5 s"
    );
}
