# syntax=docker/dockerfile:1
#
# meshguard's image: a static Go binary (no cgo, no libc) on distroless'
# static nonroot base: no shell, no package manager, user 65532. The
# Deployment in deploy/kubernetes runs it with a read-only root
# filesystem, every capability dropped and seccomp RuntimeDefault.
#
#   docker build -t ghcr.io/meshguard/meshguard:$(git describe --tags) \
#     --build-arg VERSION=$(git describe --tags) .
#
# test/deploy checks the build flags, the base and the user.

ARG GO_VERSION=1.26

FROM --platform=$BUILDPLATFORM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
# Modules first: this layer is rebuilt only when go.mod or go.sum change.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG VERSION=dev
ARG TARGETOS=linux
ARG TARGETARCH
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/meshguard ./cmd/meshguard

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/meshguard /usr/local/bin/meshguard
USER 65532:65532
EXPOSE 8080
ENTRYPOINT ["/usr/local/bin/meshguard"]
CMD ["serve", "--config", "/etc/meshguard/config.yaml"]
