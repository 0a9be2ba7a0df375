"""A real multi-node SLURM cluster on this one host, for the tests, the benchmarks and CI.

Why a real one: the submitit launcher talks to sbatch/squeue/sacct/scancel and reacts to signals and
requeues; only the real daemons show how a sweep behaves when a job is cancelled, preempted or fails, or
when a node dies under it.

What runs (in start order): munged, mariadbd, slurmdbd, slurmctld, and one ``slurmd -N <node>`` per node.
Debian's Slurm is built with MULTIPLE_SLURMD, so each slurmd is a node of its own: nodes are named by
loopback addresses (127.0.0.1, 127.0.0.2, ...) because Lightning and submitit take the first host name of
SLURM_NODELIST as the rendezvous address and such names resolve without /etc/hosts. Every daemon has a
port of its own, derived from ``port_base``, so a second cluster on other ports does not collide.
Everything it writes (configs, state, spool, logs, pid files, the database) lives under one folder,
``/tmp/retina-seg-slurm`` unless ``RETINA_SEG_SLURM_DIR`` says otherwise. Tools find the config through
``SLURM_CONF`` (``env`` has it; ``start(export=True)`` also puts it into ``os.environ``).

Usage::

    python -m devtools.slurm_cluster start|stop|status      # RETINA_SEG_SLURM_NODES nodes, default 2

Settings learned the hard way (see /work/shared/STACK-FACTS.md):
- munged must listen on its default socket; a custom socket broke sacct/sacctmgr.
- Accounting (slurmdbd) is required: without it sacct fails and submitit waits forever on a
  cancelled job.
- No systemd and no cgroups here: proctrack/linuxproc, task/none, jobacct_gather/none.

Modules: settings (names, ports, timeouts), processes (programs, pids, signals), nodes (node names and what a
node's crash takes down), config (slurm.conf and slurmdbd.conf), daemons (starting each daemon), cluster
(SlurmCluster: start, stop, status, a node's crash and restart), __main__ (the command line).
"""

from devtools.slurm_cluster.cluster import SlurmCluster
from devtools.slurm_cluster.errors import SlurmError
from devtools.slurm_cluster.processes import missing_binaries

__all__ = ["SlurmCluster", "SlurmError", "missing_binaries"]
