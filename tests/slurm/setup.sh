#!/usr/bin/env bash
# Bring up a throw-away single-node SLURM on 127.0.0.1 for tests/test_cluster_slurm.py:
#   munged + MariaDB + slurmdbd + slurmctld + slurmd, every file (keys, configs, databases, spools,
#   logs, pid files) under STATE_DIR, on free ports, so that the daemons can be stopped by their pid
#   files (teardown.sh STATE_DIR). Outside STATE_DIR only a link /etc/slurm/slurm.conf → ours, for
#   the lifetime of the test (why: below).
# Installs Debian's slurm-wlm + munge + mariadb-server when missing (root + apt-get only; otherwise
# exits 3 with what to install). Adapted from ../shared/cluster/setup_slurm.sh.
#
# Accounting: slurmdbd + MariaDB, so that `sacct` answers: the executor plugin's default status
# command stays `sacct`, exactly as on a real cluster, and the test reads sacct's records.
# The node: 16 CPUs (SlurmdParameters=config_overrides lets a 2-core CI machine advertise what the
# profile asks for, two 8-CPU shard jobs side by side, which then share the real cores), the
# machine's memory less 1 GiB, and one GPU whose device file is /dev/null, so that the profile's GPU
# request is scheduled for real (torch finds no CUDA behind it and trains on CPU).
# Partitions: `main` (default) and `gpu`, the names profiles/slurm/config.yaml uses.
#
# Usage: setup.sh STATE_DIR; on success STATE_DIR/env holds `SLURM_CONF=...` for clients.
set -euo pipefail
BASE=$(realpath -m "${1:?usage: setup.sh STATE_DIR}")
NODE_CPUS=${NODE_CPUS:-16}
export DEBIAN_FRONTEND=noninteractive

# --- packages ---------------------------------------------------------------------------------
need=()
for pair in munged:munge slurmctld:slurmctld slurmd:slurmd sbatch:slurm-client \
            slurmdbd:slurmdbd mariadbd:mariadb-server; do
  command -v "${pair%%:*}" >/dev/null || [ -x "/usr/sbin/${pair%%:*}" ] || need+=("${pair#*:}")
done
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "setup: installing ${need[*]} (Debian packages)"
    apt-get -o DPkg::Lock::Timeout=300 update -qq
    apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${need[@]}" >/dev/null
  else
    echo "setup: missing ${need[*]}; install them (apt-get install ${need[*]}) or run as root" >&2
    exit 3
  fi
fi
if [ "$(id -u)" != 0 ]; then
  echo "setup: the daemons run as root (SlurmUser=root); run as root" >&2
  exit 3
fi
export PATH="$PATH:/usr/sbin"

# Inside a job, the plugin's `srun` runs with every SLURM_* variable but a few removed, SLURM_CONF
# included (snakemake-executor-plugin-slurm-jobstep 0.6.1), so it reads the default path: it is
# linked to ours for the test's lifetime (teardown.sh removes the link). A real configuration there
# is left alone (exit 3: the test skips); a dangling link from a killed earlier run is replaced.
DEFAULT_CONF=/etc/slurm/slurm.conf
if [ -L "$DEFAULT_CONF" ] && [ ! -e "$DEFAULT_CONF" ]; then rm "$DEFAULT_CONF"; fi
if [ -e "$DEFAULT_CONF" ] || [ -L "$DEFAULT_CONF" ]; then
  echo "setup: $DEFAULT_CONF exists (a real SLURM, or a concurrent test's); not touching it" >&2
  exit 3
fi

mkdir -p "$BASE"/{etc,munge,mysql,log,state/ctld,state/d}
chmod 700 "$BASE/munge"
free_ports() {  # N distinct free TCP ports on 127.0.0.1
  python3 - "$1" <<'EOF'
import socket, sys
socks = [socket.socket() for _ in range(int(sys.argv[1]))]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in socks))
EOF
}
wait_for() {  # wait_for SECONDS COMMAND...: poll every 0.25 s until COMMAND succeeds
  local deadline=$(( $(date +%s) + $1 )); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { echo "setup: timed out waiting for: $*" >&2; return 1; }
    sleep 0.25
  done
}
node_idle() { [ "$(sinfo -h -o %t -p main)" = idle ]; }
read -r CTLD_PORT SLURMD_PORT DBD_PORT MYSQL_PORT <<<"$(free_ports 4)"

# --- munge: own key and socket ------------------------------------------------------------------
MUNGE_SOCKET="$BASE/munge/munge.socket"
mungekey --create --keyfile="$BASE/munge/munge.key" --force
chmod 400 "$BASE/munge/munge.key"
munged --force --socket="$MUNGE_SOCKET" --key-file="$BASE/munge/munge.key" \
       --pid-file="$BASE/munge/munged.pid" --log-file="$BASE/log/munged.log" \
       --seed-file="$BASE/munge/munged.seed"
munge -S "$MUNGE_SOCKET" -n | unmunge -S "$MUNGE_SOCKET" >/dev/null

# --- MariaDB: own data directory, loopback TCP only ----------------------------------------------
mariadb-install-db --no-defaults --user=root --datadir="$BASE/mysql" \
                   --auth-root-authentication-method=socket --skip-test-db >"$BASE/log/mariadb-install.log" 2>&1
MYSQL_SOCKET="$BASE/mysql.sock"
setsid mariadbd --no-defaults --user=root --datadir="$BASE/mysql" --socket="$MYSQL_SOCKET" \
       --port="$MYSQL_PORT" --bind-address=127.0.0.1 --pid-file="$BASE/mysql/mariadbd.pid" \
       --log-error="$BASE/log/mariadb.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
wait_for 60 mariadb --no-defaults -S "$MYSQL_SOCKET" -e 'select 1'
mariadb --no-defaults -S "$MYSQL_SOCKET" -e "
  CREATE DATABASE slurm_acct_db;
  CREATE USER 'slurm'@'127.0.0.1' IDENTIFIED BY 'slurm';
  CREATE USER 'slurm'@'localhost' IDENTIFIED BY 'slurm';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
  GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"

# --- configuration (SLURM_CONF points clients and daemons here; slurmdbd.conf sits beside it) ----
# Our munged's socket: AuthInfo for slurmctld/slurmd/clients, AccountingStoragePass for the
# connections to slurmdbd (slurm.conf(5): the MUNGE socket used with slurmdbd).
export SLURM_CONF="$BASE/etc/slurm.conf"
cat >"$BASE/etc/slurmdbd.conf" <<EOC
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
DbdHost=localhost
DbdAddr=127.0.0.1
DbdPort=$DBD_PORT
SlurmUser=root
LogFile=$BASE/log/slurmdbd.log
PidFile=$BASE/state/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$MYSQL_PORT
StorageUser=slurm
StoragePass=slurm
StorageLoc=slurm_acct_db
EOC
chmod 600 "$BASE/etc/slurmdbd.conf"   # slurmdbd refuses a readable file holding the password

MEM=$(( $(awk '/MemTotal/{print int($2/1024)}' /proc/meminfo) - 1024 ))
cat >"$SLURM_CONF" <<EOC
ClusterName=avcmrci
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$CTLD_PORT
SlurmdPort=$SLURMD_PORT
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$MUNGE_SOCKET
CredType=cred/munge
MpiDefault=none
MailProg=/bin/true
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
ReturnToService=2
SlurmdParameters=config_overrides
SlurmctldPidFile=$BASE/state/slurmctld.pid
SlurmdPidFile=$BASE/state/slurmd.pid
StateSaveLocation=$BASE/state/ctld
SlurmdSpoolDir=$BASE/state/d
SlurmctldLogFile=$BASE/log/slurmctld.log
SlurmdLogFile=$BASE/log/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
MinJobAge=300
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
AccountingStoragePort=$DBD_PORT
AccountingStoragePass=$MUNGE_SOCKET
AccountingStorageTRES=gres/gpu
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=2
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$NODE_CPUS RealMemory=$MEM Gres=gpu:1 State=UNKNOWN
PartitionName=main Nodes=localhost Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes=localhost MaxTime=INFINITE State=UP
EOC
echo "NodeName=localhost Name=gpu File=/dev/null" >"$BASE/etc/gres.conf"
mkdir -p /etc/slurm
ln -s "$SLURM_CONF" "$DEFAULT_CONF"

# --- daemons ----------------------------------------------------------------------------------
slurmdbd
wait_for 30 sacctmgr -n list cluster
sacctmgr -i add cluster avcmrci >/dev/null
slurmctld
slurmd -N localhost            # -N: the node is "localhost", whatever `hostname` says
wait_for 60 node_idle || { sinfo >&2; exit 1; }
echo "SLURM_CONF=$SLURM_CONF" >"$BASE/env"
sinfo
