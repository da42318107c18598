# syntax=docker/dockerfile:1

# Build stage: the release binary. SQLX_OFFLINE makes sqlx's query macros read the committed
# .sqlx/ data instead of connecting to a database at build time.
FROM rust:1-bookworm AS builder
# cmake: aws-lc-sys (rustls' crypto provider) may fall back to a CMake build.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /build
ENV SQLX_OFFLINE=true
COPY Cargo.toml Cargo.lock ./
COPY .sqlx .sqlx
COPY src src
COPY migrations migrations
COPY config config
# The default framework is built into the binary.
COPY frameworks frameworks
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    cargo build --release --locked

# Runtime stage: the binary, its configuration, and curl for the compose healthcheck.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /app --shell /usr/sbin/nologin ecpat
COPY --from=builder /build/target/release/ecpat-indicators /usr/local/bin/ecpat-indicators
COPY config /app/config
# The shipped framework, to copy and change (`ecpat-indicators frameworks load FILE`).
COPY frameworks /app/frameworks
WORKDIR /app
USER ecpat
# Listen on every interface inside the container (the service's own default is loopback).
ENV HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
CMD ["ecpat-indicators", "run"]
