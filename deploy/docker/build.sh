#!/bin/sh
# Build loanrisk's image with the container engine present; `make image` runs it.
#   deploy/docker/build.sh TAG [LOCK]
# TAG: the image's name (loanrisk:VERSION; loanrisk-LOCK:VERSION for another lock).
# LOCK: serve (the serving image, the default), runtime (everything, tuning and optimal
#       binning too) or dask (runtime and Dask: the DaskCluster's images).
# Environment (all optional):
#   ENGINE  docker | buildah | podman. Default: docker if its daemon answers, else buildah,
#           else podman. buildah runs with chroot isolation, which needs no OCI runtime.
#   BASE    official | debian. official: python:3.11-slim-bookworm from its registry.
#           debian: a local Debian bookworm base made by mmdebstrap (Debian's own packages,
#           no image registry), cached in the engine's storage under a tag derived from its
#           inputs, so it is rebuilt only when they change. Default: debian when the engine
#           is buildah or podman and mmdebstrap is installed, else official.
#   CA      a PEM bundle pip and apt trust during the build (a TLS-intercepting proxy's CA),
#           passed as the build secret `ca`; never stored in the image. Empty: none.
set -eu
tag=$1
lock=${2:-serve}
cd "$(dirname "$0")/../.."

if [ -z "${ENGINE:-}" ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then ENGINE=docker
  elif command -v buildah >/dev/null 2>&1; then ENGINE=buildah
  elif command -v podman >/dev/null 2>&1; then ENGINE=podman
  else echo "no container engine: install docker (with buildx), buildah or podman" >&2; exit 1
  fi
fi
if [ -z "${BASE:-}" ]; then
  BASE=official
  if [ "$ENGINE" != docker ] && command -v mmdebstrap >/dev/null 2>&1; then BASE=debian; fi
fi

python_image=python:3.11-slim-bookworm
if [ "$BASE" = debian ]; then
  # What python:3.11-slim-bookworm provides: Python 3.11 with venv, `python`, CA certificates,
  # plus XGBoost's OpenMP runtime; no documentation, manual pages or translations.
  packages=python3,python3-venv,python-is-python3,libgomp1,ca-certificates
  excludes="/usr/share/doc/* /usr/share/man/* /usr/share/info/* /usr/share/locale/*"
  key=$(printf '%s\n' bookworm minbase "$packages" "$excludes" | sha256sum | cut -c1-12)
  python_image=localhost/loanrisk-base:bookworm-$key
  if ! "$ENGINE" inspect --type image "$python_image" >/dev/null 2>&1; then
    echo "building the Debian base $python_image with mmdebstrap"
    work=$(mktemp -d)
    trap 'rm -rf "$work"' EXIT
    set -f  # the patterns are dpkg's, not this shell's
    set --
    for pattern in $excludes; do set -- "$@" "--dpkgopt=path-exclude=$pattern"; done
    set +f
    mmdebstrap --quiet --variant=minbase --include="$packages" "$@" bookworm "$work/base.tar"
    if [ "$ENGINE" = buildah ]; then
      container=$(buildah from scratch)
      buildah add --quiet "$container" "$work/base.tar" /
      buildah config --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
        --cmd python "$container"
      buildah commit --quiet --rm "$container" "$python_image" >/dev/null
    else
      "$ENGINE" import "$work/base.tar" "$python_image" >/dev/null
    fi
  fi
fi

set -- --file deploy/docker/Dockerfile --tag "$tag" \
  --build-arg "PYTHON=$python_image" --build-arg "LOCK=$lock"
if [ -n "${CA:-}" ]; then
  [ -s "$CA" ] || { echo "CA=$CA: no such bundle" >&2; exit 1; }
  set -- "$@" --secret "id=ca,src=$CA"
fi
image_id() {
  if [ "$ENGINE" = buildah ]; then buildah inspect --type image --format '{{.FromImageID}}' "$1"
  else "$ENGINE" image inspect --format '{{.Id}}' "$1"
  fi 2>/dev/null || true
}
previous=$(image_id "$tag")
echo "building $tag (LOCK=$lock) with $ENGINE on $python_image${CA:+, trusting $CA}"
# No layer cache (--layers=false): a build leaves only its image behind, not a 1.5 GB build
# stage per source change; only the tagged base above is reused.
case "$ENGINE" in
  docker) docker buildx build --load "$@" . ;;
  buildah) buildah build --isolation chroot --network host --layers=false --format docker "$@" . ;;
  podman) podman build --network host --layers=false --format docker "$@" . ;;
  *) echo "ENGINE=$ENGINE: docker, buildah or podman" >&2; exit 1 ;;
esac
# The image this tag named before, now untagged: removed unless something still uses it.
if [ -n "$previous" ] && [ "$previous" != "$(image_id "$tag")" ]; then
  "$ENGINE" rmi "$previous" >/dev/null 2>&1 || true
fi
