# syntax=docker/dockerfile:1
#
# gatehouse with the bundled demo app, as a container image. gatehouse is
# the container's PID 1: it supervises the demo's instances, proxies to
# them, reaps orphans, and on SIGTERM stops serving, drains and stops the
# apps, then exits 0.
#
#   docker build -t gatehouse:dev .
#   docker run --rm -p 8080:8080 --stop-timeout 45 gatehouse:dev
#   curl localhost:8080/ ; curl localhost:8080/.gatehouse/readyz
#
# It lives at the repository root because the build context must be the
# whole module (go.mod, cmd/, internal/, examples/demo) and `docker build .`
# is where one looks first. deploy/docker/node/Dockerfile copies the
# gatehouse binary out of this image into an image of a Node app.

FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
# A static binary (no cgo): the final stage has no libc.
ENV CGO_ENABLED=0
RUN go build -trimpath -ldflags="-s -w" -o /out/gatehouse ./cmd/gatehouse \
 && go build -trimpath -ldflags="-s -w" -o /out/demo ./examples/demo \
 && mkdir -p /out/data

# distroless/static rather than alpine: no shell, no package manager, no
# libc, only CA certificates, tzdata and /etc/passwd with the nonroot user
# (65532). gatehouse needs nothing more: it runs an app's argv itself, and
# a `command:` written as a string (sh -c) would need a shell, which the
# demo's config does not use. An app that needs a runtime (Node, Python)
# brings its own base image: see deploy/docker/node/Dockerfile.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/gatehouse /usr/local/bin/gatehouse
COPY --from=build /out/demo /app/demo
COPY deploy/docker/gatehouse.yaml /etc/gatehouse/gatehouse.yaml
# data_dir (logs, access.log, events.log, exit status files): the one
# path gatehouse writes, owned by the user it runs as. On Kubernetes an
# emptyDir is mounted here so that the root filesystem can be read-only.
COPY --from=build --chown=65532:65532 /out/data /var/lib/gatehouse
USER 65532:65532
WORKDIR /app
# 8080: the public listener; 9901: the admin API and /metrics (on
# loopback in this image's config; deploy/kubernetes opens it with a token).
EXPOSE 8080 9901
# gatehouse's graceful stop. docker stop waits 10 s by default before
# SIGKILL: give it `--stop-timeout` of at least shutdown_delay plus three
# times the longest stop_timeout plus 8 s, 2 s of it for what is left
# over as gatehouse exits, being PID 1 here (docs/kubernetes.md).
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/gatehouse", "run", "-c", "/etc/gatehouse/gatehouse.yaml"]
