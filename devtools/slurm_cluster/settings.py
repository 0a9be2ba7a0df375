"""What every part of the local cluster agrees on: its names, folders, ports, timeouts and daemons."""

from pathlib import Path

DEFAULT_DIR = "/tmp/retina-seg-slurm"
CLUSTER = "retina"
PARTITION = "debug"
CONTROLLER = "localhost"  # slurmctld and slurmdbd listen here; the nodes are 127.0.0.N
DEFAULT_NODES = 2
# Ports: port_base + 0 MariaDB (not 3306, so a system MariaDB does not get in the way), + 1 slurmdbd,
# + 2 slurmctld, + 10 + i the slurmd of node i.
DEFAULT_PORT_BASE = 6900
MUNGE_SOCKET = Path("/run/munge/munge.socket.2")
DB_USER, DB_PASS, DB_NAME = "slurm", "slurm", "slurm_acct_db"
# A dead node: SLURM marks it DOWN after SlurmdTimeout without an answer and requeues its batch jobs; a job
# step credential lives cred_expire seconds, and a requeued job waits for that before it starts again.
SLURMD_TIMEOUT_S, CRED_EXPIRE_S = 10, 10

# Start order; stop() goes in reverse. Values are the process names (/proc/PID/comm) we expect.
DAEMONS = ("munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd")  # one slurmd per node
# stop() order: groups stopped one after another, the daemons within a group together. slurmctld
# flushes to slurmdbd, slurmdbd to mariadb, and all of them need munged until they are gone.
STOP_GROUPS = (("slurmd", "slurmctld"), ("slurmdbd",), ("mariadbd", "munged"))

HEALTHY_NODE_STATES = {"idle", "mixed", "allocated", "completing"}

# The longest path of a Unix socket Linux accepts (sun_path holds 108 bytes with its terminating zero).
UNIX_SOCKET_PATH_MAX = 107
