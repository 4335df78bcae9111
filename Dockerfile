# syntax=docker/dockerfile:1
#
# The exactly reference program in a small, non-root image.
#
#   docker build -t exactly:dev .
#   docker run --rm exactly:dev help
#
# The binary is the one `make static` builds outside Docker: CGO_ENABLED=0,
# -trimpath, -ldflags "-s -w", checked to be statically linked. Keep the two
# build lines alike.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION} AS build
WORKDIR /src
# Never fetch another toolchain: the image's Go is the one go.mod names.
ENV GOTOOLCHAIN=local CGO_ENABLED=0
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
	go build -trimpath -ldflags "-s -w" -o /out/exactly ./cmd/exactly
# The state directory, created here because the runtime image has no shell;
# 65532 is distroless's nonroot user.
RUN mkdir -p /out/state

# distroless static: CA certificates, /etc/passwd with the nonroot user, a
# writable /tmp, no shell and no package manager.
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/exactly /exactly
COPY --from=build --chown=65532:65532 /out/state /var/lib/exactly
USER 65532:65532
# The defaults of `exactly run` in a container: state on the volume, the HTTP
# surface (/metrics, /healthz, /readyz, /state) on port 9100. Flags and other
# EXACTLY_* variables override them; commands without these flags ignore them.
ENV EXACTLY_STATE_DIR=/var/lib/exactly EXACTLY_HTTP_ADDR=:9100
VOLUME ["/var/lib/exactly"]
EXPOSE 9100
ENTRYPOINT ["/exactly"]
CMD ["help"]
