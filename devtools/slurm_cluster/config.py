"""slurm.conf and slurmdbd.conf of one cluster, written on every start."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from devtools.slurm_cluster.errors import SlurmError
from devtools.slurm_cluster.settings import (
    CLUSTER,
    CONTROLLER,
    CRED_EXPIRE_S,
    DB_NAME,
    DB_PASS,
    DB_USER,
    PARTITION,
    SLURMD_TIMEOUT_S,
)

if TYPE_CHECKING:
    from devtools.slurm_cluster.daemons import ClusterDaemons


def write_configs(cluster: ClusterDaemons) -> None:
    """Write the cluster's slurm.conf and, beside it where slurmdbd looks, slurmdbd.conf."""
    # Every node gets all of the host's CPUs (no cgroups enforce them), so two 2-node jobs of one CPU
    # per task fit at once; memory is shared out.
    cpus = len(os.sched_getaffinity(0))
    mem_mb = int(mem_total_mb() * 0.85) // len(cluster.nodes)
    r, base = cluster.root, cluster.port_base
    node_lines = "\n".join(
        f"NodeName={node} NodeHostname={CONTROLLER} NodeAddr={node} Port={base + 10 + index} CPUs={cpus} "
        f"RealMemory={mem_mb} State=UNKNOWN"
        for index, node in enumerate(cluster.nodes)
    )
    slurm_conf = f"""\
# Written by devtools/slurm_cluster/config.py; regenerated on every start.
ClusterName={CLUSTER}
SlurmctldHost={CONTROLLER}
SlurmctldPort={base + 2}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire={CRED_EXPIRE_S}
CredType=cred/munge
MpiDefault=none
# No systemd/cgroups in the sandbox.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Without a default, a job without --mem would take the whole node and jobs could not run side by side.
DefMemPerCPU={mem_mb // cpus}
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost={CONTROLLER}
AccountingStoragePort={base + 1}
JobCompType=jobcomp/none
# Tests requeue preempted jobs and the jobs of a dead node; batch jobs are requeueable by default.
JobRequeue=1
SlurmdTimeout={SLURMD_TIMEOUT_S}
# Cancelled jobs die fast; ended jobs stay visible to squeue/scontrol for 5 minutes.
KillWait=2
MinJobAge=300
# A node that was DOWN (e.g. left from an earlier run) returns to service when slurmd registers.
ReturnToService=2
InactiveLimit=0
Waittime=0
MailProg=/bin/true
SchedulerParameters=batch_sched_delay=0
StateSaveLocation={r}/state
# %n: each slurmd its own spool, pid and log file.
SlurmdSpoolDir={r}/spool/%n
SlurmctldPidFile={cluster.pid_file("slurmctld")}
SlurmdPidFile={cluster.run_dir}/slurmd.%n.pid
SlurmctldLogFile={cluster.log_file("slurmctld")}
SlurmdLogFile={cluster.log_dir}/slurmd.%n.log
SlurmctldDebug=info
SlurmdDebug=info
{node_lines}
PartitionName={PARTITION} Nodes={",".join(cluster.nodes)} Default=YES MaxTime=INFINITE State=UP
"""
    dbd_conf = f"""\
# Written by devtools/slurm_cluster/config.py; regenerated on every start.
AuthType=auth/munge
DbdHost={CONTROLLER}
DbdPort={base + 1}
SlurmUser=root
LogFile={cluster.log_file("slurmdbd")}
PidFile={cluster.pid_file("slurmdbd")}
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort={base}
StorageUser={DB_USER}
StoragePass={DB_PASS}
StorageLoc={DB_NAME}
"""
    cluster.conf.write_text(slurm_conf)
    dbd = cluster.etc / "slurmdbd.conf"  # slurmdbd looks next to SLURM_CONF
    dbd.write_text(dbd_conf)
    dbd.chmod(0o600)  # slurmdbd refuses a config others can read (it holds a password)


def mem_total_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise SlurmError("MemTotal not found in /proc/meminfo")
