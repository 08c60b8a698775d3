# Tidemark container image: a static binary on distroless, running as nonroot.
#
#   docker build -t tidemark .
#   docker run --rm -p 8080:8080 -e TIDEMARK_DATABASE_URL=postgres://... tidemark serve --addr :8080
#
# Needs BuildKit (default since Docker 23) for the cache mounts.

FROM --platform=$BUILDPLATFORM golang:1.26 AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
ENV GOTOOLCHAIN=local CGO_ENABLED=0

# Dependencies first, so source-only changes reuse this layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    GOOS=${TARGETOS} GOARCH=${TARGETARCH} \
    go build -trimpath -ldflags "-s -w" -o /tidemark ./cmd/tidemark

FROM gcr.io/distroless/static:nonroot
COPY --from=build /tidemark /tidemark
USER 65532:65532
ENTRYPOINT ["/tidemark"]
