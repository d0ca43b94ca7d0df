#!/usr/bin/env bash
# Backup/restore throughput of lifeboat's pipeline against the raw tools, in one run on
# one generated PostgreSQL database (real garage as S3):
#   (a) pg_dump -Fc -Z0 | zstd -3 > /dev/null      (b) lifeboat dump -> garage
#   (c) zstd -d < file | pg_restore                 (d) lifeboat restore <- garage
# Both restores use pg_restore --single-transaction --exit-on-error --no-owner.
# Last line: `ratio backup=B restore=R`, B = t(a)/t(b), R = t(c)/t(d) (targets 0.90, 0.85).
# Also prints the pipeline's peak RSS (VmHWM) against part size x parts in flight + 64 MiB.
#
# Usage: scripts/bench-backup.sh [MiB of raw data, default 1024] [extra pipeline_bench args]
set -euo pipefail
cd "$(dirname "$0")/.."
MIB="${1:-1024}"
shift || true
command -v zstd >/dev/null || { echo "zstd not found (apt-get install zstd)" >&2; exit 1; }
cargo build --release --quiet --example pipeline_bench
exec target/release/examples/pipeline_bench run --mib "$MIB" "$@"
