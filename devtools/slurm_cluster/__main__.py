"""The command line: `python -m devtools.slurm_cluster start|stop|status`."""

import sys
import time

from devtools.slurm_cluster.cluster import SlurmCluster
from devtools.slurm_cluster.errors import SlurmError
from devtools.slurm_cluster.processes import missing_binaries


def main(argv: list[str] | None = None) -> int:
    """CLI: start|stop|status, printing what was done and how long it took."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or args[0] not in {"start", "stop", "status"}:
        print("usage: python -m devtools.slurm_cluster start|stop|status", file=sys.stderr)
        return 2
    cluster = SlurmCluster()
    t0 = time.monotonic()
    if args[0] == "start":
        missing = missing_binaries()
        if missing:
            print(f"missing programs: {' '.join(missing)} (run .ci/install-debian-packages.sh)", file=sys.stderr)
            return 1
        try:
            started = cluster.start()
        except SlurmError as exc:
            print(f"failed to start: {exc}", file=sys.stderr)
            return 1
        took = time.monotonic() - t0
        print(f"{'; '.join(cluster.actions)}: up in {took:.1f} s" if started else f"already up ({took:.1f} s to check)")
        print(f"export SLURM_CONF={cluster.conf}")
        return 0
    if args[0] == "stop":
        stopped = cluster.stop()
        took = time.monotonic() - t0
        print(f"stopped {', '.join(stopped)} in {took:.1f} s" if stopped else "nothing of ours was running")
        return 0
    print(cluster.status())
    return 0 if cluster.is_up() else 1


if __name__ == "__main__":
    sys.exit(main())
