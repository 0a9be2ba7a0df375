#!/usr/bin/env bash
# Install the Debian packages that are missing from the given list; with no arguments, those behind the
# real SLURM cluster of tests/slurm (devtools/slurm_cluster/) and the headless browser that renders the
# report page in tests/integration/test_report_page_browser.py. Idempotent: when every package is already
# installed it returns at once without touching the network. Needs root, or sudo.
# tests/integration/test_install.py runs the install branch for real on a package it removes first.
set -euo pipefail

SLURM_PACKAGES=(munge slurm-client slurmctld slurmd slurmdbd mariadb-server)
BROWSER_PACKAGES=(chromium)
if [[ $# -gt 0 ]]; then
    packages=("$@")
else
    packages=("${SLURM_PACKAGES[@]}" "${BROWSER_PACKAGES[@]}")
fi

missing=()
for pkg in "${packages[@]}"; do
    # "install ok installed" is the only status that means the package is fully set up.
    if [[ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)" != "install ok installed" ]]; then
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    echo "install-debian-packages: already installed: ${packages[*]}"
    exit 0
fi

# An array, not a string: as root it expands to no word at all. (A string SUDO="" followed by -E made
# "-E" the command, so this branch failed on every machine that lacked a package.)
as_root=()
if [[ "$(id -u)" != 0 ]]; then
    as_root=(sudo -E)
fi

echo "install-debian-packages: installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
"${as_root[@]}" apt-get update -q
"${as_root[@]}" apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "install-debian-packages: done"
