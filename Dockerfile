# The one binary, with its SQL embedded, on a minimal image that runs as a
# non-root user (distroless's nonroot, uid 65532). fly deploy passes the
# version and commit: fly deploy --build-arg VERSION=$(git describe --tags --always) --build-arg COMMIT=$(git rev-parse HEAD)
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=devel
ARG COMMIT=unknown
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w -X main.version=${VERSION} -X main.commit=${COMMIT}" -o /leadrelay ./cmd/leadrelay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /leadrelay /leadrelay
USER nonroot:nonroot
# 8080: the service (PORT); 9091: /metrics (METRICS_ADDR), private.
EXPOSE 8080 9091
ENTRYPOINT ["/leadrelay"]
CMD ["serve"]
