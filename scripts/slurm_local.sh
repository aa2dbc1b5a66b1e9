#!/usr/bin/env bash
# A real one-node SLURM cluster on localhost, for the SLURM tests in CI and on developer machines.
#
#   bash scripts/slurm_local.sh start    install Debian's packages if missing, start munge, MariaDB,
#                                        slurmdbd, slurmctld and slurmd; wait until the node is idle
#   bash scripts/slurm_local.sh stop     stop every daemon this script started; check none is left
#   bash scripts/slurm_local.sh status   does the controller answer, and the sinfo line
#   bash scripts/slurm_local.sh env      the line to eval so that clients find the cluster
#
# Everything lives under $ROADMAP_SLURM_DIR (default /tmp/roadmap-slurm); nothing is written to
# /etc/slurm. Every client (sbatch, sacct, submitit, pytest) needs SLURM_CONF=$ROADMAP_SLURM_DIR/slurm.conf.
# Needs root and apt-get (Debian 12); measured facts and pitfalls: shared/reference/slurm-local.md.
set -euo pipefail

DIR="${ROADMAP_SLURM_DIR:-/tmp/roadmap-slurm}"
PORT_BASE="${ROADMAP_SLURM_PORT_BASE:-6817}"       # slurmctld, slurmd, slurmdbd use 3 consecutive ports
DB_PORT="${ROADMAP_SLURM_DB_PORT:-3307}"
HOST="$(hostname -s)"
export SLURM_CONF="$DIR/slurm.conf"
START_TIME=$(date +%s.%N)

say() { printf 'slurm_local: %-44s %6.1f s\n' "$1" "$(echo "$(date +%s.%N) - $START_TIME" | bc)"; }
client() { timeout 15 "$@"; }                      # clients hang while munged is down (pitfall 11)
controller_up() { client scontrol ping 2>/dev/null | grep -q "UP"; }

install_packages() {
    local missing=()
    for command in slurmctld slurmd sinfo munged slurmdbd mariadbd bc; do
        command -v "$command" >/dev/null 2>&1 || missing+=("$command")
    done
    [ ${#missing[@]} -eq 0 ] && return
    export DEBIAN_FRONTEND=noninteractive
    # The image blocks service starts (policy-rc.d); the daemons are started by hand below. The
    # packages' install scripts must not see our SLURM_CONF, which does not exist yet.
    local log=/tmp/roadmap-slurm-apt.log
    if ! { env -u SLURM_CONF apt-get update -qq && env -u SLURM_CONF apt-get install -y -qq \
            --no-install-recommends slurmctld slurmd slurm-client munge slurmdbd mariadb-server bc; } >"$log" 2>&1; then
        echo "slurm_local: installing Debian's SLURM packages failed; see $log" >&2
        return 1
    fi
    say "installed ${missing[*]}"
}

write_config() {
    local cpus memory
    cpus=$(nproc)
    # 90% of RAM, in MB: the node must not promise memory the machine lacks.
    memory=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.9}' /proc/meminfo)
    mkdir -p "$DIR"/{state,spool,run,log,mysql}
    # munged wants its own 755 folder it can write to, the key at 600 (pitfall 3).
    install -d -o munge -g munge -m 755 "$DIR/munge"
    [ -f "$DIR/munge/munge.key" ] || { mungekey --create --keyfile="$DIR/munge/munge.key" >/dev/null 2>&1 ||
        dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1024 count=1 status=none; }
    chown munge:munge "$DIR/munge/munge.key"
    chmod 600 "$DIR/munge/munge.key"
    cat > "$DIR/slurm.conf" <<EOF
ClusterName=local
SlurmctldHost=$HOST(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$PORT_BASE
SlurmdPort=$((PORT_BASE + 1))
AuthType=auth/munge
CredType=cred/munge
# cred_expire=10: a requeued job may restart after 10 s instead of 120 s (pitfall 4).
AuthInfo=socket=$DIR/munge/munge.socket,cred_expire=10
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/run/slurmctld.pid
SlurmdPidFile=$DIR/run/slurmd.pid
SlurmctldLogFile=$DIR/log/slurmctld.log
SlurmdLogFile=$DIR/log/slurmd.log
# No cgroups are delegated to us: track processes through /proc.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
# Accounting through slurmdbd so that sacct (and submitit's job states) work (pitfall 1); the
# persistent connection takes its munge socket from AccountingStoragePass (pitfall 2).
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=127.0.0.1
AccountingStoragePort=$((PORT_BASE + 2))
AccountingStoragePass=$DIR/munge/munge.socket
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=30
JobCompType=jobcomp/none
MpiDefault=none
SchedulerType=sched/backfill
# Requeued jobs are picked up within 5 s rather than on the next 60 s pass (pitfall 4).
SchedulerParameters=sched_interval=5,bf_interval=5
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
SlurmctldTimeout=30
SlurmdTimeout=30
InactiveLimit=0
MinJobAge=300
KillWait=10
Waittime=0
# submitit requeues preempted and timed-out Checkpointable jobs with scontrol requeue (pitfall 5).
JobRequeue=1
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF
    cat > "$DIR/slurmdbd.conf" <<EOF
AuthType=auth/munge
AuthInfo=socket=$DIR/munge/munge.socket
DbdAddr=127.0.0.1
DbdHost=localhost
DbdPort=$((PORT_BASE + 2))
SlurmUser=root
PidFile=$DIR/run/slurmdbd.pid
LogFile=$DIR/log/slurmdbd.log
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=roadmap-local
StorageLoc=slurm_acct_db
EOF
    chmod 600 "$DIR/slurmdbd.conf"   # slurmdbd refuses a readable config holding a password
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

wait_for() {   # wait_for DESCRIPTION SECONDS COMMAND...
    local what=$1 seconds=$2
    shift 2
    for _ in $(seq $((seconds * 10))); do
        "$@" >/dev/null 2>&1 && return 0
        sleep 0.1
    done
    echo "slurm_local: $what did not come up in ${seconds} s; logs in $DIR/log" >&2
    return 1
}

start_database() {
    running "$DIR/run/mariadb.pid" && return
    if [ ! -d "$DIR/mysql/mysql" ]; then
        mariadb-install-db --user=root --datadir="$DIR/mysql" --auth-root-authentication-method=socket \
            --skip-test-db >"$DIR/log/mariadb-install.log" 2>&1
    fi
    mariadbd --user=root --datadir="$DIR/mysql" --socket="$DIR/run/mysql.sock" --bind-address=127.0.0.1 \
        --port="$DB_PORT" --pid-file="$DIR/run/mariadb.pid" --log-error="$DIR/log/mariadb.log" \
        >>"$DIR/log/mariadb.log" 2>&1 &
    wait_for "MariaDB" 30 mariadb --socket="$DIR/run/mysql.sock" -e "SELECT 1"
    mariadb --socket="$DIR/run/mysql.sock" -e "CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY 'roadmap-local';
        CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'roadmap-local';
        GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1'; GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost';"
    say "MariaDB up"
}

start() {
    if controller_up; then
        say "already running"
        return
    fi
    install_packages
    write_config
    if ! running "$DIR/munge/munged.pid"; then
        runuser -u munge -- munged --socket="$DIR/munge/munge.socket" --key-file="$DIR/munge/munge.key" \
            --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
            --seed-file="$DIR/munge/munged.seed"
        wait_for "munged" 10 test -S "$DIR/munge/munge.socket"
        say "munged up"
    fi
    start_database
    # slurmdbd reads slurmdbd.conf from the folder of $SLURM_CONF.
    running "$DIR/run/slurmdbd.pid" || slurmdbd
    wait_for "slurmdbd" 30 bash -c "exec 3<>/dev/tcp/127.0.0.1/$((PORT_BASE + 2))"
    say "slurmdbd up"
    client sacctmgr -i add cluster local >/dev/null 2>&1 || true
    running "$DIR/run/slurmctld.pid" || slurmctld -f "$SLURM_CONF"
    wait_for "slurmctld" 30 controller_up
    say "slurmctld up"
    running "$DIR/run/slurmd.pid" || slurmd -f "$SLURM_CONF" -N "$HOST"
    wait_for "node $HOST idle" 60 bash -c "timeout 15 sinfo -h -N -o %T | grep -q idle"
    say "node $HOST idle (partition debug)"
}

stop() {
    local pidfile pid pids=()
    for pidfile in "$DIR/run/slurmd.pid" "$DIR/run/slurmctld.pid" "$DIR/run/slurmdbd.pid" \
                   "$DIR/run/mariadb.pid" "$DIR/munge/munged.pid"; do
        if running "$pidfile"; then
            pid=$(cat "$pidfile")
            pids+=("$pid")
            kill -TERM "$pid" 2>/dev/null || true
            # Stop in order (node, controller, database daemon, database, munge): each one waits
            # for the previous to go, so nothing reconnects to a daemon that is already gone.
            for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -KILL "$pid" 2>/dev/null || true
        fi
    done
    # Job steps outlive slurmd by design; those of this cluster go too.
    pkill -KILL -f "slurmstepd.*" 2>/dev/null || true
    sleep 0.2
    local left
    # Process names, matched whole (pgrep -x cannot take a pattern this long).
    left=$(ps -eo pid=,comm= | awk '$2 ~ /^(slurmctld|slurmd|slurmdbd|slurmstepd|munged|mariadbd)$/' || true)
    if [ -n "$left" ]; then
        echo "slurm_local: still running after stop:" >&2
        echo "$left" >&2
        return 1
    fi
    say "stopped (${#pids[@]} daemons)"
}

status() {
    if controller_up; then
        echo "slurm_local: controller answers (SLURM_CONF=$SLURM_CONF)"
        client sinfo
    else
        echo "slurm_local: no controller answers"
        return 1
    fi
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    env) echo "export SLURM_CONF=$SLURM_CONF" ;;
    *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
