#!/usr/bin/env bash
# `make demo`: build, then run lifeboat's main job end to end on kube-sandbox (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$HOME/.cache/lifeboat/bin:$HOME/.cargo/bin:$PATH"
cargo build --locked -q -p lifeboat --bin lifeboat -p lifeboat-testkit --bin lifeboat-demo
exec target/debug/lifeboat-demo
