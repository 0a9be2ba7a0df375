#!/usr/bin/env bash
# Install the Debian packages behind the real single-node SLURM cluster used by tests/slurm
# (tests/slurm/harness.py). Idempotent: when every package is already installed it returns at once,
# without touching the network. Needs root (CI runners and the dev sandbox both are).
set -euo pipefail

PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)

missing=()
for pkg in "${PACKAGES[@]}"; do
    # "install ok installed" is the only status that means the package is fully set up.
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-slurm: already installed: ${PACKAGES[*]}"
    exit 0
fi

SUDO=""
if [[ "$(id -u)" != 0 ]]; then
    SUDO="sudo"
fi

echo "install-slurm: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO -E apt-get update -q
$SUDO -E apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-slurm: done"
