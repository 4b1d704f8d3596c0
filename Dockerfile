# syntax=docker/dockerfile:1
# everynode container image: build with the Rust toolchain, run as non-root on a minimal glibc base
# (distroless cc, the same Debian release as the builder). The build context is the whole workspace
# (every member's manifest must be there for cargo) minus what .dockerignore leaves out.
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p everynode --bin everynode \
 && install -D -m 0755 -s target/release/everynode /out/everynode \
 && ln -s everynode /out/kubectl-everynode

FROM gcr.io/distroless/cc-debian12:nonroot
# everynode, and the link kubectl-everynode -> everynode: the same binary as the kubectl plugin, to
# copy out of the image or to run in the controller's pod with its service account:
#   kubectl -n kube-system exec deploy/everynode -- kubectl-everynode explain -n NS ds/NAME
COPY --from=build /out/ /usr/local/bin/
# numeric, so that runAsNonRoot can verify it (deploy/ sets runAsUser to the same id)
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/everynode"]
CMD ["run"]
