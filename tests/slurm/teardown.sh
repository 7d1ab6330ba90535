#!/usr/bin/env bash
# Stop the daemons that setup.sh STATE_DIR started, by their pid files, newest first; SIGKILL what
# is still alive after 10 s; remove the /etc/slurm/slurm.conf link to STATE_DIR. Safe to run after a
# partial set-up (missing pid files are skipped).
set -u
BASE=${1:?usage: teardown.sh STATE_DIR}
status=0
# Jobs still queued or running (a run killed by its timeout) go first: all jobs of this private
# cluster are the test's.
if [ -s "$BASE/state/slurmctld.pid" ] && kill -0 "$(cat "$BASE/state/slurmctld.pid")" 2>/dev/null; then
  export SLURM_CONF="$BASE/etc/slurm.conf"
  jobs=$(squeue -h -o %i 2>/dev/null)
  if [ -n "$jobs" ]; then
    echo "teardown: cancelling jobs" $jobs
    scancel $jobs
    for _ in $(seq 40); do [ -z "$(squeue -h -o %i 2>/dev/null)" ] && break; sleep 0.25; done
  fi
fi
for f in "$BASE/state/slurmd.pid" "$BASE/state/slurmctld.pid" "$BASE/state/slurmdbd.pid" \
         "$BASE/mysql/mariadbd.pid" "$BASE/munge/munged.pid"; do
  [ -s "$f" ] || continue
  pid=$(cat "$f")
  kill "$pid" 2>/dev/null || continue
  for _ in $(seq 40); do kill -0 "$pid" 2>/dev/null || break; sleep 0.25; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "teardown: pid $pid ($f) ignored SIGTERM, sending SIGKILL"
    kill -9 "$pid" 2>/dev/null
    status=1
  fi
  echo "teardown: stopped $pid ($(basename "$f" .pid))"
done
link=/etc/slurm/slurm.conf
if [ -L "$link" ] && [ "$(readlink "$link")" = "$(realpath -m "$BASE")/etc/slurm.conf" ]; then
  rm "$link" && echo "teardown: removed $link"
fi
exit $status
