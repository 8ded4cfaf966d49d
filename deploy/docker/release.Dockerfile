# syntax=docker/dockerfile:1
#
# The released image, ghcr.io/gatehouse/gatehouse: GoReleaser's dockers_v2
# (.goreleaser.yaml) builds it from the binaries it built and stamped, for
# linux/amd64 and linux/arm64, in a context holding this file, each
# platform's binaries under linux/amd64/ and linux/arm64/, and
# deploy/docker/gatehouse.yaml. It is the image the root Dockerfile
# builds from source (gatehouse with the demo app, as PID 1, user 65532),
# so the two are run and documented alike (docs/containers.md); read that
# Dockerfile for the reasons behind each line.

# An empty data_dir owned by the image's user: distroless has no shell to
# make one, nor does a COPY from the context make an empty directory.
FROM --platform=$BUILDPLATFORM busybox:1.37 AS data
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
ARG TARGETPLATFORM
COPY $TARGETPLATFORM/gatehouse /usr/local/bin/gatehouse
COPY $TARGETPLATFORM/demo /app/demo
COPY deploy/docker/gatehouse.yaml /etc/gatehouse/gatehouse.yaml
COPY --from=data --chown=65532:65532 /out/data /var/lib/gatehouse
USER 65532:65532
WORKDIR /app
EXPOSE 8080 9901
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gatehouse", "run", "-c", "/etc/gatehouse/gatehouse.yaml"]
