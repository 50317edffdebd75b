#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine, as root and without systemd: munged (as user
# munge), slurmctld, slurmd; wait until sinfo shows the node idle. For the tests and CI.
#   tests/slurm/start_cluster.sh DIR    slurm.conf, state, logs and PID files go to DIR
#   export SLURM_CONF=DIR/slurm.conf    for sinfo, sbatch and Snakemake's SLURM executor; the
#                                       file is also linked from /etc/slurm/slurm.conf (see below)
#   tests/slurm/stop_cluster.sh DIR     stops every daemon this script started
# Needs Debian's slurmctld slurmd slurm-client munge. No slurmdbd: sacct does not work, so the
# Snakemake profile checks job states with squeue, and finished jobs stay in squeue's view
# (MinJobAge, an hour: longer than the test's whole run, whose jobs it lists) long enough for that.
set -euo pipefail
dir=$(mkdir -p "$1" && cd "$1" && pwd)
deadline=${SLURM_START_TIMEOUT:-60}
start=$(date +%s%N)
mkdir -p "$dir/state" "$dir/spool"
: >"$dir/started_pid_files"

# munged: reuse one that answers already (another test session), else start ours
if ! munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    install -d -o munge -g munge -m 0755 /run/munge /var/log/munge /var/lib/munge
    runuser -u munge -- munged --pid-file=/run/munge/munged.pid
    echo /run/munge/munged.pid >>"$dir/started_pid_files"
fi

# The node as slurmd sees it (CPUs, sockets, cores), with RealMemory 5% below the machine's
# so that the node is not drained for having less memory than configured.
node=$(slurmd -C | head -n 1 | sed -E 's/ UpTime=.*//')
memory=$(sed -E 's/.*RealMemory=([0-9]+).*/\1/' <<<"$node")
node=$(sed -E "s/RealMemory=[0-9]+/RealMemory=$((memory * 95 / 100))/" <<<"$node")
cat >"$dir/slurm.conf" <<CONF
ClusterName=facemask
SlurmctldHost=$(hostname -s)
SlurmUser=root
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
ReturnToService=2
MinJobAge=3600
$node State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$dir/slurm.conf
# and at the default path: Snakemake's job step (snakemake-executor-plugin-slurm-jobstep) clears
# every SLURM_* variable, SLURM_CONF too, before its srun inside the job. A link left by a test
# cluster that was killed before stop_cluster.sh ran is replaced; a real slurm.conf is moved
# aside to DIR/etc-slurm.conf and put back by stop_cluster.sh, on CI only (elsewhere it may
# belong to a cluster in use, so the script stops instead).
etc_conf=/etc/slurm/slurm.conf
if [ -L "$etc_conf" ] && { [ ! -e "$etc_conf" ] || grep -qx 'ClusterName=facemask' "$etc_conf"; }; then
    rm -f "$etc_conf"
elif [ -e "$etc_conf" ]; then
    if [ "${CI:-}" != true ]; then
        echo "SLURM: $etc_conf exists and is not a test cluster's; not replacing it (set CI=true to" \
             "move it aside while the test cluster runs)" >&2
        exit 1
    fi
    mv "$etc_conf" "$dir/etc-slurm.conf"
fi
mkdir -p /etc/slurm
ln -sfn "$SLURM_CONF" "$etc_conf"

slurmctld -i
echo "$dir/slurmctld.pid" >>"$dir/started_pid_files"
slurmd
echo "$dir/slurmd.pid" >>"$dir/started_pid_files"

until [ "$(sinfo -h -N -o %t 2>/dev/null)" = idle ]; do
    if (( ($(date +%s%N) - start) / 1000000000 > deadline )); then
        echo "SLURM: the node is not idle after ${deadline}s; sinfo says: $(sinfo -N 2>&1)" >&2
        tail -n 20 "$dir/slurmctld.log" "$dir/slurmd.log" >&2 || true
        exit 1
    fi
    sleep 0.5
done
elapsed=$(( ($(date +%s%N) - start) / 1000000 ))
printf 'SLURM: one-node cluster up in %d.%03d s (%s)\n' $((elapsed / 1000)) $((elapsed % 1000)) "$node"
