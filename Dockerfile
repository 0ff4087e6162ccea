# The one binary, with its SQL embedded, on a minimal image.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' -o /leadrelay ./cmd/leadrelay

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /leadrelay /leadrelay
EXPOSE 8080
ENTRYPOINT ["/leadrelay"]
CMD ["serve"]
