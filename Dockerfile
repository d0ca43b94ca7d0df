# lifeboat operator image. Cannot be built on the project's own machines (no Docker
# engine there); kept simple enough to be checked by reading.
#
#   docker build -t ghcr.io/lifeboat-dev/lifeboat:0.1.0 .

# --- build ---------------------------------------------------------------------------
FROM rust:1.95-trixie AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p lifeboat --bin lifeboat \
 && install -D -m 0755 target/release/lifeboat /out/lifeboat

# --- runtime -------------------------------------------------------------------------
# The dump and restore clients lifeboat runs: pg_dump/pg_restore/psql of the newest
# PostgreSQL major (18, from the PostgreSQL project's apt repository; newer clients dump
# older servers), and the MariaDB client tools (mariadb-dump, mariadb), which also talk to
# MySQL 8.
FROM debian:trixie-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates curl gnupg zstd mariadb-client \
 && install -d /usr/share/postgresql-common/pgdg \
 && curl -fsSL https://www.postgresql.org/media/keys/ACCC4CF8.asc -o /usr/share/postgresql-common/pgdg/apt.postgresql.org.asc \
 && echo "deb [signed-by=/usr/share/postgresql-common/pgdg/apt.postgresql.org.asc] https://apt.postgresql.org/pub/repos/apt trixie-pgdg main" > /etc/apt/sources.list.d/pgdg.list \
 && apt-get update \
 && apt-get install -y --no-install-recommends postgresql-client-18 \
 && apt-get purge -y curl gnupg && apt-get autoremove -y \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /out/lifeboat /usr/local/bin/lifeboat
# The chart runs it with a read-only root filesystem and an emptyDir on /tmp.
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/lifeboat"]
CMD ["operator"]
