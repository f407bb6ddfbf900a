# For users with a Docker engine. `make image` builds the same image without one.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY api/ api/
COPY cmd/ cmd/
COPY controllers/ controllers/
COPY internal/ internal/
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -tags nolocal -trimpath -ldflags "-s -w -X github.com/fedforge/fedforge/internal/version.Version=${VERSION}" -o /fedforge ./cmd/manager

FROM gcr.io/distroless/static:nonroot
COPY --from=build /fedforge /fedforge
USER 65532:65532
ENTRYPOINT ["/fedforge"]
CMD ["manager"]
