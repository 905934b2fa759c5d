# syntax=docker/dockerfile:1
#
# slogate as a container: a static binary on distroless, running as
# nonroot. Build with the version information the Makefile's build target
# sets, e.g.
#
#   docker build -t slogate \
#     --build-arg VERSION=$(git describe --tags | sed 's/^v//') \
#     --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg BRANCH=$(git rev-parse --abbrev-ref HEAD) \
#     --build-arg BUILD_DATE=$(date -u +%Y%m%d-%H:%M:%S) .
#
# and run with a configuration and definitions mounted under /etc/slogate,
# the configuration saying storage.path: /var/lib/slogate, and a volume
# there for the runs (the image has the directory, owned by nonroot, so that
# a new named volume is writable):
#
#   docker run -p 8080:8080 -v $PWD/slogate.yaml:/etc/slogate/slogate.yaml:ro \
#     -v $PWD/definitions:/etc/slogate/definitions:ro -v slogate-data:/var/lib/slogate slogate

FROM golang:1.26 AS build
WORKDIR /src
# Modules first, so that a source change does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=0.0.0-dev
ARG REVISION=unknown
ARG BRANCH=unknown
ARG BUILD_USER=docker
ARG BUILD_DATE=unknown
# CGO off: a static binary needs no libc, which distroless/static lacks.
# -trimpath keeps the build machine's paths out of the binary.
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-X github.com/prometheus/common/version.Version=${VERSION} -X github.com/prometheus/common/version.Revision=${REVISION} -X github.com/prometheus/common/version.Branch=${BRANCH} -X github.com/prometheus/common/version.BuildUser=${BUILD_USER} -X github.com/prometheus/common/version.BuildDate=${BUILD_DATE}" -o /out/slogate ./cmd/slogate
RUN mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/slogate /slogate
COPY --from=build --chown=65532:65532 /out/data /var/lib/slogate
USER nonroot
EXPOSE 8080
ENTRYPOINT ["/slogate"]
CMD ["serve", "--config=/etc/slogate/slogate.yaml"]
