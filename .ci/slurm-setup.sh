#!/usr/bin/env bash
# Starts a single-node Slurm cluster on this machine (for tests/slurm.rs): installs
# slurm-wlm and munge with apt-get when missing, writes a minimal slurm.conf, starts
# munged, slurmctld and slurmd, and waits until the node is idle. Always exits 0:
# when something fails it says why, and the Slurm test then skips visibly.
set -u

log() { echo "slurm-setup: $*"; }
give_up() { log "SKIPPING the Slurm cluster: $*"; exit 0; }

if [ "$(id -u)" != 0 ]; then give_up "not root, cannot install or start Slurm"; fi

if sinfo -h -o '%T' 2>/dev/null | grep -qx idle; then
    log "a cluster already answers: $(sinfo -h -o '%N %T %c')"
    exit 0
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    log "installing slurm-wlm and munge"
    export DEBIAN_FRONTEND=noninteractive
    { apt-get update -qq && apt-get install -y -qq slurm-wlm munge >/dev/null; } \
        || give_up "apt-get install slurm-wlm munge failed"
fi

host=$(hostname -s 2>/dev/null || hostname)
cpus=$(nproc)
memory=$(awk '/MemTotal/ { print int($2 / 1024 * 0.9) }' /proc/meminfo)

# munge: a key, and the daemon as user munge.
mkdir -p /etc/munge /var/lib/munge /var/log/munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key status=none
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge
chmod 0700 /etc/munge /var/lib/munge /var/log/munge
chmod 0755 /run/munge
chmod 0400 /etc/munge/munge.key
if ! pgrep -u munge -x munged >/dev/null; then
    su -s /bin/sh munge -c /usr/sbin/munged || give_up "munged did not start"
fi
munge -n | unmunge >/dev/null 2>&1 || give_up "munge cannot encode and decode a credential"

# slurm.conf: one node, one partition, no cgroups.
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd /var/log/slurm
chown slurm:slurm /var/spool/slurmctld /var/log/slurm 2>/dev/null || true
cat > /etc/slurm/slurm.conf <<CONF
ClusterName=brandsim-ci
SlurmctldHost=${host}
AuthType=auth/munge
CryptoType=crypto/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SlurmUser=root
SlurmdUser=root
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
ReturnToService=2
SchedulerType=sched/backfill
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
MpiDefault=none
NodeName=${host} CPUs=${cpus} RealMemory=${memory} State=UNKNOWN
PartitionName=debug Nodes=${host} Default=YES MaxTime=INFINITE State=UP
CONF
# The Debian package has no cgroup.conf; with proctrack/linuxproc none is needed.

pgrep -x slurmctld >/dev/null || /usr/sbin/slurmctld || give_up "slurmctld did not start (see /var/log/slurm/slurmctld.log)"
pgrep -x slurmd >/dev/null || /usr/sbin/slurmd || give_up "slurmd did not start (see /var/log/slurm/slurmd.log)"

for _ in $(seq 1 30); do
    state=$(sinfo -h -o '%T' 2>/dev/null | head -n 1)
    case "$state" in
        idle) log "cluster up: $(sinfo -h -o 'node %N, %c CPUs, %T')"; exit 0 ;;
        down* | drain*) scontrol update NodeName="${host}" State=RESUME 2>/dev/null ;;
    esac
    sleep 1
done
give_up "the node did not become idle (state: ${state:-none}); see /var/log/slurm/"
