#!/usr/bin/env bash
# Stop the daemons that start_cluster.sh DIR started (by their PID files), newest first, and
# remove its link /etc/slurm/slurm.conf (putting back a file it moved aside).
set -uo pipefail
dir=$(cd "$1" && pwd)
[ -f "$dir/started_pid_files" ] || exit 0
# first the jobs still queued or running (a run that was cut short), so none outlives slurmd
export SLURM_CONF=$dir/slurm.conf
if scancel --quiet --user="$(id -un)" 2>/dev/null; then
    for _ in $(seq 40); do
        [ -z "$(squeue -h -t pending,running,completing 2>/dev/null)" ] && break
        sleep 0.5
    done
fi
tac "$dir/started_pid_files" | while read -r pid_file; do
    pid=$(cat "$pid_file" 2>/dev/null) || continue
    kill "$pid" 2>/dev/null || continue
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null
done
rm -f "$dir/started_pid_files"
if [ "$(readlink /etc/slurm/slurm.conf)" = "$dir/slurm.conf" ]; then rm -f /etc/slurm/slurm.conf; fi
# and put back the slurm.conf that start_cluster.sh moved aside, if any
if [ -e "$dir/etc-slurm.conf" ] && [ ! -e /etc/slurm/slurm.conf ]; then mv "$dir/etc-slurm.conf" /etc/slurm/slurm.conf; fi
