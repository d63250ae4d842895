#!/usr/bin/env bash
# Makes the runtime base image `debian:bookworm-slim` locally, for machines that have a Docker
# engine but no image registry: debootstrap a minimal Debian bookworm (with ca-certificates) from
# the Debian mirror, strip what a slim image leaves out, and `docker import` it under the tag the
# Dockerfile's runtime stage uses. Does nothing when the tag already exists (pulled or made before).
#
#   docker/base-image.sh [TAG]        (default debian:bookworm-slim; needs root and debootstrap)
set -euo pipefail

tag="${1:-debian:bookworm-slim}"
mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"

if docker image inspect "$tag" >/dev/null 2>&1; then
    echo "base image $tag: present"
    exit 0
fi

as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v debootstrap >/dev/null 2>&1; then
    as_root apt-get update -qq
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends debootstrap >/dev/null
fi

root="$(mktemp -d /tmp/freerouter-rootfs.XXXXXX)"
trap 'as_root rm -rf "$root"' EXIT
echo "base image $tag: debootstrap bookworm (minbase) from $mirror"
as_root debootstrap --variant=minbase --include=ca-certificates bookworm "$root" "$mirror" >/dev/null

# What debian:bookworm-slim leaves out too: docs, man pages, locales, apt's lists and caches, logs.
as_root rm -rf "$root"/usr/share/doc/* "$root"/usr/share/man/* "$root"/usr/share/info/* \
    "$root"/usr/share/locale/* "$root"/usr/share/lintian "$root"/usr/share/linda \
    "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
    "$root"/var/log/* "$root"/dev/* "$root"/proc/* "$root"/sys/* "$root"/tmp/* \
    "$root"/var/cache/ldconfig/aux-cache
# Keep future apt installs in this image slim as the real one does.
as_root tee "$root/etc/dpkg/dpkg.cfg.d/docker-slim" >/dev/null <<'EOF'
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/lintian/*
EOF

as_root tar -C "$root" --numeric-owner -c . | docker import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'CMD ["bash"]' - "$tag" >/dev/null
echo "base image $tag: imported ($(docker image inspect -f '{{.Size}}' "$tag") bytes)"
