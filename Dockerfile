# syntax=docker/dockerfile:1
# The sparkplace binary on a distroless static base: no shell, no package manager, runs as uid 65532.
# Build: docker build -t ghcr.io/sparkplace/sparkplace:dev .   (multi-arch: docker buildx build --platform linux/amd64,linux/arm64 ...)

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so source edits do not re-download modules.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
ARG TARGETOS TARGETARCH
# Static binary (CGO off) for the scratch-like base; -trimpath drops build paths, -s -w the symbol tables.
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/sparkplace ./cmd/sparkplace

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/sparkplace /usr/local/bin/sparkplace
# Numeric, so Kubernetes can check runAsNonRoot without resolving a user name.
USER 65532:65532
EXPOSE 9443 8080 8081
ENTRYPOINT ["/usr/local/bin/sparkplace"]
CMD ["webhook"]
