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

# Debian slim with Debian's git: the server mirrors federated branches with it
# (internal/gitsync, issue 14). `make image` puts the same git (Debian 12's binaries and
# libraries, hack/image-git.sh) beside the static binary without an engine.
FROM debian:bookworm-slim
RUN apt-get update \
	&& apt-get install -y --no-install-recommends git ca-certificates \
	&& rm -rf /var/lib/apt/lists/* /usr/share/doc /usr/share/man \
	&& groupadd --gid 65532 nonroot \
	&& useradd --uid 65532 --gid 65532 --home-dir /home/nonroot --create-home --shell /usr/sbin/nologin nonroot
COPY --from=build /fedforge /fedforge
USER 65532:65532
ENTRYPOINT ["/fedforge"]
CMD ["manager"]
