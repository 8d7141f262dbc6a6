# kevents: one small non-root image of the `kevents` binary; every stage (collector,
# processor, sink, migrate) is a sub-command of it.
#
#   docker build -t kevents:local .
#   docker run --rm kevents:local --help
#
# Build stage: the Rust toolchain plus what rdkafka's bundled librdkafka build needs
# (the same list as scripts/install-deps: cmake and a C/C++ toolchain; OpenSSL and
# SASL headers for TLS/SASL; libcurl headers because librdkafka 2.12's rdkafka_conf.c
# includes <curl/curl.h> even when built without it).
FROM rust:1-bookworm AS build
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        cmake make g++ perl pkg-config libssl-dev libsasl2-dev libcurl4-openssl-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# --locked: the image is built from exactly the dependency versions the tests ran with.
RUN cargo build --release --locked -p kevents \
    && install -D -m 0755 target/release/kevents /out/kevents

# Runtime stage: only the shared libraries the binary links (`ldd kevents`: libssl3 /
# libcrypto, zlib — zlib is in the base image) and the CA store for TLS to Kafka and
# ClickHouse. No shell tools are needed by kevents itself; bash (from the base image)
# is used by docker-compose's health checks.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ca-certificates libssl3 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 kevents \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin kevents
COPY --from=build /out/kevents /usr/local/bin/kevents
# Numeric, so Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# The ops endpoints (/healthz, /readyz, /metrics) of collector, processor and sink.
EXPOSE 9470 9471 9472
ENTRYPOINT ["kevents"]
CMD ["--help"]
