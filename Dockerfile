# scopegate container image: `docker build -t scopegate .`
# ENTRYPOINT is the scopegate binary: `docker run scopegate serve --config /etc/scopegate/config.yaml`.
# No default command: a bare `serve` would run the embedded demo, whose token secrets are public.

# --- build ---
FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, in their own layer: it is rebuilt only when Cargo.toml or Cargo.lock changes.
# build.rs compiles proto/ and the crate embeds data/ and deploy/ files, so the dummy build needs them.
COPY Cargo.toml Cargo.lock build.rs ./
COPY proto proto
RUN mkdir -p src benches \
    && echo 'fn main() {}' > src/main.rs \
    && touch src/lib.rs \
    && for b in decide check; do echo 'fn main() {}' > "benches/$b.rs"; done \
    && cargo build --release --locked \
    && rm -rf src benches
# Then the sources.
COPY src src
COPY benches benches
COPY data data
COPY deploy deploy
# touch: the dummy build left newer timestamps on the crate's own artifacts.
RUN touch src/main.rs src/lib.rs \
    && cargo build --release --locked --bin scopegate \
    && cp target/release/scopegate /usr/local/bin/scopegate

# --- run ---
# distroless cc: glibc and libgcc, no shell, user nonroot (65532).
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /usr/local/bin/scopegate /usr/local/bin/scopegate
USER 65532:65532
# 9191 ext_authz gRPC + gRPC health, 9192 HTTP, 9300 control plane
EXPOSE 9191 9192 9300
ENTRYPOINT ["/usr/local/bin/scopegate"]
