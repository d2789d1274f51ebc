#!/usr/bin/env bash
# Gives a CPU-only Debian 12 machine a WebGPU adapter: Mesa's lavapipe (software Vulkan) from
# bookworm-backports (25.x; bookworm's own 22.3 is too old for Dawn). With it, the webgpu backend,
# its kernels and the webgpu tests run here, slowly but exactly; without it they skip (locally; CI fails instead, unless DELTATUNE_ALLOW_NO_WEBGPU=1).
# Needs root and Debian's apt. Safe to run twice.
set -euo pipefail
if ls /usr/share/vulkan/icd.d/lvp_icd*.json >/dev/null 2>&1; then echo "lavapipe already installed"; exit 0; fi
. /etc/os-release
if [ "${VERSION_CODENAME:-}" != bookworm ]; then echo "not Debian 12: install a Mesa >= 24 lavapipe (mesa-vulkan-drivers) yourself"; exit 1; fi
echo "deb http://deb.debian.org/debian bookworm-backports main" > /etc/apt/sources.list.d/bookworm-backports.list
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
echo "lavapipe installed: $(ls /usr/share/vulkan/icd.d/lvp_icd*.json)"
