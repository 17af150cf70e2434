# The images of docker-compose.yml, from one build: `worker` (worker-example:
# the demo service's worker and producer) and `ferry` (the operator's
# command and `ferry serve`). The Rust is the workspace's rust-version
# (Cargo.toml), the oldest that builds it; .ci/compose-check keeps the two
# in step.
FROM rust:1.89-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p worker-example -p ferry-queue-cli

FROM debian:bookworm-slim AS runtime
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 ferry
USER ferry

FROM runtime AS worker
COPY --from=build /src/target/release/worker-example /usr/local/bin/worker-example
ENTRYPOINT ["worker-example"]

FROM runtime AS ferry
COPY --from=build /src/target/release/ferry /usr/local/bin/ferry
EXPOSE 8080
ENTRYPOINT ["ferry"]
