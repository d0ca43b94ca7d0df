//! Benchmark of lifeboat's backup and restore pipeline against the raw tools, on one
//! generated PostgreSQL shop database and a real garage, in one run (see
//! scripts/bench-backup.sh). Prints timings, the pipeline's peak RSS (VmHWM) and, last,
//! `ratio backup=B restore=R` where B = t(a)/t(b) and R = t(c)/t(d) (throughput ratios;
//! (a) and (b) alternate twice, best of each).
//!
//! `pipeline_bench run --mib 1024` drives everything; `backup` and `restore` are the
//! lifeboat sides, run as child processes so their peak RSS is theirs alone.

use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use lifeboat::pipeline::{
    BackupOptions, BackupRequest, DumpJob, RestoreOptions, Verification, restore_object, run_backup,
};
use lifeboat::storage::multipart::PartSizing;
use lifeboat::storage::{BackupKey, StaticCredentials, Store, StoreConfig, list_backups};
use lifeboat_testkit::pg::shop::{ShopSize, create_shop, table_sums};
use lifeboat_testkit::pg::{self, PgCluster, PgOptions, PgServer};
use lifeboat_testkit::s3::Garage;
use tokio::process::Command;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    command: Mode,
}

#[derive(Subcommand)]
enum Mode {
    /// Start PostgreSQL and garage, generate the database, time (a)-(d).
    Run {
        /// Approximate raw size of the generated database.
        #[arg(long, default_value_t = 256)]
        mib: u64,
        #[arg(long, default_value_t = 16)]
        part_mib: usize,
        #[arg(long, default_value_t = 4)]
        parts_in_flight: usize,
        #[arg(long, default_value_t = 3)]
        level: i32,
    },
    /// lifeboat's dump-to-S3 of one database (credentials from LIFEBOAT_BENCH_ACCESS_KEY/SECRET_KEY).
    Backup {
        #[command(flatten)]
        s3: S3Args,
        #[arg(long)]
        pg_host: String,
        #[arg(long)]
        db: String,
        #[arg(long)]
        part_mib: usize,
        #[arg(long)]
        parts_in_flight: usize,
        #[arg(long)]
        level: i32,
    },
    /// lifeboat's restore of the newest backup into an existing empty database.
    Restore {
        #[command(flatten)]
        s3: S3Args,
        #[arg(long)]
        pg_host: String,
        #[arg(long)]
        db: String,
    },
}

#[derive(clap::Args)]
struct S3Args {
    #[arg(long)]
    endpoint: String,
    #[arg(long)]
    bucket: String,
    #[arg(long, default_value = "garage")]
    region: String,
}

impl S3Args {
    async fn store(&self) -> anyhow::Result<Store> {
        let mut config = StoreConfig::new(&self.bucket);
        config.prefix = "bench".into();
        config.region = self.region.clone();
        config.endpoint = Some(self.endpoint.clone());
        config.force_path_style = true;
        config.credentials = Some(StaticCredentials {
            access_key_id: std::env::var("LIFEBOAT_BENCH_ACCESS_KEY")?,
            secret_access_key: std::env::var("LIFEBOAT_BENCH_SECRET_KEY")?,
        });
        Ok(Store::connect(config).await?)
    }
}

fn pg_cmd(tool: &str, host: &str) -> Command {
    let mut cmd = Command::new(pg::bin_dir().join(tool));
    cmd.args(["-h", host, "-p", "5432", "-U", pg::SUPERUSER]);
    cmd
}

/// Peak resident set size of this process, in KiB.
fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Mode::Backup {
            s3,
            pg_host,
            db,
            part_mib,
            parts_in_flight,
            level,
        } => {
            let store = s3.store().await?;
            let mut dump = pg_cmd("pg_dump", &pg_host);
            dump.args(["-Fc", "-Z0", "-d", &db]);
            let request = BackupRequest {
                key: BackupKey::new("bench", "shop", "b1")?,
                engine: "postgres".into(),
                server_version: "15".into(),
                consistent_position: None,
                jobs: vec![DumpJob {
                    database: db.clone(),
                    format: "pgdump".into(),
                    command: dump,
                }],
            };
            let options = BackupOptions {
                compression_level: level,
                part_sizing: PartSizing {
                    initial: part_mib << 20,
                    max_parts: 10_000,
                },
                parts_in_flight,
                ..Default::default()
            };
            let started = Instant::now();
            let manifest = run_backup(&store, request, &options).await?;
            let object = &manifest.objects[0];
            println!(
                "backup_seconds={:.3} raw_bytes={} stored_bytes={} vmhwm_kib={}",
                started.elapsed().as_secs_f64(),
                object.raw_size,
                object.size,
                vm_hwm_kib()
            );
        }
        Mode::Restore { s3, pg_host, db } => {
            let store = s3.store().await?;
            let newest = list_backups(&store, "bench", "shop").await?;
            let entry = newest.first().context("no backup to restore")?;
            let mut restore = pg_cmd("pg_restore", &pg_host);
            restore.args(["--single-transaction", "--exit-on-error", "--no-owner", "-d", &db]);
            let options = RestoreOptions {
                identities: vec![],
                verification: Verification::Streaming,
            };
            let started = Instant::now();
            let stats = restore_object(&store, &entry.manifest.objects[0], restore, &options).await?;
            println!(
                "restore_seconds={:.3} raw_bytes={} vmhwm_kib={}",
                started.elapsed().as_secs_f64(),
                stats.raw_bytes,
                vm_hwm_kib()
            );
        }
        Mode::Run {
            mib,
            part_mib,
            parts_in_flight,
            level,
        } => run(mib, part_mib, parts_in_flight, level).await?,
    }
    Ok(())
}

async fn timed_shell(what: &str, script: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("bash")
        .args(["-o", "pipefail", "-c", script])
        .output()
        .await?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    println!("{what}: {:.3}s", elapsed.as_secs_f64());
    Ok(elapsed)
}

async fn timed_self(what: &str, garage: &Garage, args: &[String]) -> anyhow::Result<(Duration, String)> {
    let started = Instant::now();
    let out = Command::new(std::env::current_exe()?)
        .args(args)
        .env("LIFEBOAT_BENCH_ACCESS_KEY", garage.access_key())
        .env("LIFEBOAT_BENCH_SECRET_KEY", garage.secret_key())
        .output()
        .await?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        bail!("{what} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let report = String::from_utf8_lossy(&out.stdout).trim().to_string();
    println!("{what}: {:.3}s ({report})", elapsed.as_secs_f64());
    Ok((elapsed, report))
}

fn field(report: &str, name: &str) -> u64 {
    report
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

async fn create_db(server: &PgServer, name: &str) -> anyhow::Result<()> {
    server.execute(&format!("CREATE DATABASE {name}")).await
}

/// A shop of about `mib` MiB of dump. Orders stay under 270,000 (the generator's
/// `g * 7919` is int4 arithmetic and overflows beyond); notes grow instead.
fn shop_size(mib: u64) -> ShopSize {
    let orders = 250_000u64;
    // Each order is one row plus 3 items (6 of 7 with a note) of roughly note_bytes each.
    let per_order = (mib << 20) / orders;
    ShopSize {
        customers: 25_000,
        products: 5_000,
        orders,
        items_per_order: 3,
        note_bytes: (per_order.saturating_sub(150) * 7 / 25).max(16),
    }
}

async fn run(mib: u64, part_mib: usize, parts_in_flight: usize, level: i32) -> anyhow::Result<()> {
    let garage = Garage::start()?;
    let cluster = PgCluster::start(PgOptions::default()).await?;
    let server = &cluster.primary;
    let host = server.host();
    let generated = Instant::now();
    create_shop(server, "shop", shop_size(mib)).await?;
    let db_bytes: i64 = server.query_one("SELECT pg_database_size('shop')").await?;
    println!(
        "generated shop: {} MiB on disk in {:.1}s",
        db_bytes >> 20,
        generated.elapsed().as_secs_f64()
    );
    let dir = tempfile::tempdir()?;
    let file = dir.path().join("shop.pgdump.zst");
    let pg_bin = pg::bin_dir();
    let dump = format!(
        "{}/pg_dump -h {host} -p 5432 -U postgres -Fc -Z0 -d shop",
        pg_bin.display()
    );

    let baseline = format!("{dump} | zstd -q -{level} > /dev/null");
    let s3 = |mode: &str| -> Vec<String> {
        vec![
            mode.into(),
            "--endpoint".into(),
            garage.endpoint(),
            "--bucket".into(),
            garage.bucket().into(),
            "--pg-host".into(),
            host.clone(),
        ]
    };
    let mut backup_args = s3("backup");
    backup_args.extend(
        [
            "--db",
            "shop",
            "--part-mib",
            &part_mib.to_string(),
            "--parts-in-flight",
            &parts_in_flight.to_string(),
            "--level",
            &level.to_string(),
        ]
        .map(String::from),
    );
    // Alternate (a) and (b) twice and keep each one's best, so cache warm-up and
    // neighbours' noise do not favour whichever runs second.
    let mut a = Duration::MAX;
    let mut b = Duration::MAX;
    let mut backup_report = String::new();
    for _ in 0..2 {
        a = a.min(timed_shell("(a) pg_dump -Fc -Z0 | zstd -3 > /dev/null", &baseline).await?);
        let (elapsed, report) = timed_self("(b) lifeboat dump -> garage", &garage, &backup_args).await?;
        b = b.min(elapsed);
        backup_report = report;
    }

    // Untimed: the compressed file (c) restores from.
    timed_shell(
        "    (file for c) pg_dump | zstd > file",
        &format!("{dump} | zstd -q -{level} > {}", file.display()),
    )
    .await?;
    create_db(server, "shop_c").await?;
    let c = timed_shell(
        "(c) zstd -d < file | pg_restore",
        &format!(
            "zstd -q -d < {} | {}/pg_restore -h {host} -p 5432 -U postgres --single-transaction --exit-on-error --no-owner -d shop_c",
            file.display(),
            pg_bin.display()
        ),
    )
    .await?;
    create_db(server, "shop_d").await?;
    let mut restore_args = s3("restore");
    restore_args.extend(["--db", "shop_d"].map(String::from));
    let (d, restore_report) = timed_self("(d) lifeboat restore <- garage", &garage, &restore_args).await?;

    let same = table_sums(server, "shop_d").await? == table_sums(server, "shop").await?;
    println!("restored tables equal the source: {same}");
    let raw = field(&backup_report, "raw_bytes");
    let bound_kib = (part_mib * parts_in_flight) as u64 * 1024 + 64 * 1024;
    println!(
        "raw dump {} MiB; peak RSS backup {} MiB, restore {} MiB; bound part x in-flight + 64 MiB = {} MiB",
        raw >> 20,
        field(&backup_report, "vmhwm_kib") >> 10,
        field(&restore_report, "vmhwm_kib") >> 10,
        bound_kib >> 10
    );
    if !same {
        bail!("restored database differs from the source");
    }
    println!(
        "ratio backup={:.2} restore={:.2}",
        a.as_secs_f64() / b.as_secs_f64(),
        c.as_secs_f64() / d.as_secs_f64()
    );
    Ok(())
}
