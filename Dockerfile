# everynode container image: build with the Rust toolchain, run as non-root on a minimal glibc base.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY controlplane/Cargo.toml controlplane/Cargo.toml
COPY controlplane/src controlplane/src
COPY src src
RUN cargo build --release --locked --bin everynode && strip target/release/everynode

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/everynode /usr/local/bin/everynode
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/everynode"]
CMD ["run"]
