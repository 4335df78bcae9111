#!/usr/bin/env bash
# cluster.sh: a real Apache Kafka cluster (KRaft, no ZooKeeper, no Docker) on
# 127.0.0.1 for the integration tests.
#
# Usage:
#   cluster.sh fetch                      fetch the Kafka jars (no-op when cached)
#   cluster.sh up [--nodes N] [--transaction-version V] [--security sasl_ssl]
#                                         format and start a fresh cluster, wait
#                                         until every node answers, print
#                                         KAFKA_BROKERS=... (and, secured,
#                                         KAFKA_SECURED_BROKERS=...)
#   cluster.sh down                       stop every node, remove the run dir
#   cluster.sh stop-node N                SIGTERM node N (controlled shutdown), wait
#   cluster.sh kill-node N                SIGKILL node N (a crash)
#   cluster.sh start-node N               start node N on its data dir, wait
#   cluster.sh status                     one line per node
#   cluster.sh brokers [--security sasl_ssl]
#                                         print the (PLAINTEXT or SASL_SSL)
#                                         bootstrap list
#
# Nodes are combined broker+controller processes; node N (1..9) listens on
# 127.0.0.1:PN092 (clients) and 127.0.0.1:PN093 (controller quorum), P being
# the port prefix (1 by default: 1N092, 1N093): below Linux's ephemeral port
# range (32768-60999), so a client's outgoing connection can never hold a
# node's port while the node is down. --nodes is 3 by default (replication
# factor 3, min.insync.replicas 2); --nodes 1 gives a single node with
# replication factor 1 and min.insync.replicas 1.
#
# A second, independent cluster runs beside the first with its own run dir
# and port prefix, e.g. the one-node target of the mirror tests:
#   EXACTLY_KAFKA_DIR=/tmp/exactly-kafka-target EXACTLY_KAFKA_PORT_PREFIX=2 \
#     cluster.sh up --nodes 1
# Every later command on it needs the same EXACTLY_KAFKA_DIR (the prefix is
# kept in the run dir).
#
# Secured (`up --security sasl_ssl`, or EXACTLY_KAFKA_SECURITY=sasl_ssl):
# every node gets a third listener, SASL_SSL on 127.0.0.1:PN094
# (SCRAM-SHA-512 over TLS, its certificate signed by a throwaway CA made
# with openssl and keytool), and the KRaft ACL authorizer with
# allow.everyone.if.no.acl.found=false. Two SCRAM users are created at
# format time with random passwords: `admin`, a super user, and `app`, with
# no ACL at all until admin grants some. The PLAINTEXT and CONTROLLER
# listeners stay as they are, for the existing suite and for the traffic
# between nodes: their principal, User:ANONYMOUS, is a super user too, so
# that the loopback-only plaintext side door works as before while on the
# SASL_SSL listener, where every principal is a SCRAM user, the ACLs bite.
# The run dir then holds tls/ca.pem (the CA clients trust),
# tls/truststore.p12 and admin-client.properties (for Kafka's own CLI
# tools), and secured.env (mode 0600: KAFKA_SECURED_BROKERS,
# KAFKA_SECURED_CA_FILE, KAFKA_SECURED_USER, KAFKA_SECURED_PASSWORD,
# KAFKA_SECURED_ADMIN_USER, KAFKA_SECURED_ADMIN_PASSWORD) for the tests to
# source; no password is printed.
#
# `up` always starts from scratch: when a cluster from an earlier `up` is
# still running in the run dir, it is stopped and its data removed first.
#
# Environment:
#   EXACTLY_KAFKA_DIR       run dir: properties, data, logs, pid files, the
#                           `brokers` file (default /tmp/exactly-kafka-cluster)
#   EXACTLY_KAFKA_PORT_PREFIX
#                           first digit of every port `up` assigns, 1 or 2
#                           (default 1); other commands use the one `up` kept
#   EXACTLY_KAFKA_CACHE     jar cache root (default
#                           ${XDG_CACHE_HOME:-$HOME/.cache}/exactly-kafka);
#                           jars go to <root>/<kafka version>/lib
#   EXACTLY_KAFKA_VERSION   Kafka version (default: kafka.version in pom.xml)
#   EXACTLY_KAFKA_WAIT      seconds to wait for nodes to answer (default 120)
#   EXACTLY_KAFKA_STOP_WAIT seconds stop-node waits for a node to exit
#                           (default 60)
#   EXACTLY_KAFKA_DOWN_WAIT seconds `down` waits after SIGTERM before it
#                           sends SIGKILL (default 20)
#   EXACTLY_KAFKA_HEAP_OPTS JVM heap flags (default "-Xms256m -Xmx768m")
#   EXACTLY_KAFKA_JVM_OPTS  other JVM flags (default "-XX:+UseG1GC
#                           -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1";
#                           C1 only starts ~20% faster and spends less CPU on
#                           JIT; drop TieredStopAtLevel for throughput tests)
#   EXACTLY_KAFKA_SECURITY  plaintext (default) or sasl_ssl: what `up` does
#                           without --security
#   EXACTLY_KAFKA_BROKER_PROPS
#                           extra broker properties, one key=value per line,
#                           appended to every node's properties (a later line
#                           overrides an earlier one); for tuning experiments,
#                           e.g. "add.partitions.to.txn.retry.backoff.ms=5"
#   JAVA_HOME               Java 17 or later (otherwise `java` from PATH)
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pom=$script_dir/pom.xml

run_dir=${EXACTLY_KAFKA_DIR:-/tmp/exactly-kafka-cluster}
port_prefix=${EXACTLY_KAFKA_PORT_PREFIX:-1}
kafka_version=${EXACTLY_KAFKA_VERSION:-$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n 1)}
cache_root=${EXACTLY_KAFKA_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/exactly-kafka}
lib_dir=$cache_root/$kafka_version/lib
wait_secs=${EXACTLY_KAFKA_WAIT:-120}
stop_wait_secs=${EXACTLY_KAFKA_STOP_WAIT:-60}
heap_opts=${EXACTLY_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
jvm_opts=${EXACTLY_KAFKA_JVM_OPTS:--XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:TieredStopAtLevel=1}
java=${JAVA_HOME:+$JAVA_HOME/bin/}java
# plaintext or sasl_ssl: set by `up` (its flag or EXACTLY_KAFKA_SECURITY) and
# kept in cluster.env for the other commands.
security=plaintext

# A file only this tool creates; `down` refuses to delete a run dir without
# it, so a mistyped EXACTLY_KAFKA_DIR cannot wipe an unrelated directory.
marker=.exactly-kafka-cluster

log() { printf 'cluster.sh: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

usage() {
  sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# --- jars -----------------------------------------------------------------

# fetch copies kafka_2.13 and its runtime dependencies into $lib_dir via
# Maven. A stamp holding the pom's checksum (cksum, which macOS has too)
# makes it a no-op when the jars for this exact pom are already there; the
# copy goes to a temporary folder first so an interrupted fetch never leaves
# a half-filled lib dir behind.
fetch() {
  local stamp=$lib_dir/.fetched want
  want=$(cksum <"$pom")
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: Maven is needed to fetch the Kafka jars"
  mkdir -p "$cache_root/$kafka_version"
  # Serialise concurrent fetches (two test jobs starting at once).
  exec 9>"$cache_root/$kafka_version/.lock"
  if command -v flock >/dev/null; then flock 9; fi
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exec 9>&-
    return 0
  fi
  log "fetching Kafka $kafka_version jars into $lib_dir"
  local tmp=$cache_root/$kafka_version/lib.tmp.$$
  rm -rf "$tmp"
  # Maven's output is kept for failures only: even with -q, Debian's Maven
  # 3.8 prints stray terminal escape codes.
  local mvn_log=$cache_root/$kafka_version/mvn.log
  if ! mvn -q -B -f "$pom" package -Dkafka.version="$kafka_version" -Dkafka.lib.dir="$tmp" >"$mvn_log" 2>&1; then
    sed 's/\x1b\[[0-9;]*m//g' "$mvn_log" >&2
    rm -rf "$tmp"
    die "fetching Kafka $kafka_version jars failed (Maven output above)"
  fi
  rm -f "$mvn_log"
  printf '%s\n' "$want" >"$tmp/.fetched"
  rm -rf "$lib_dir" "$cache_root/$kafka_version/target"
  mv "$tmp" "$lib_dir"
  exec 9>&-
}

# check_java fails unless $java is Java 17 or later (Kafka 4's minimum).
check_java() {
  command -v "$java" >/dev/null || die "java not found (set JAVA_HOME or put Java 17+ on PATH)"
  local major
  major=$("$java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)
  [[ -n $major && $major -ge 17 ]] || die "Kafka $kafka_version needs Java 17 or later; $java is version ${major:-unknown}"
}

# --- state ----------------------------------------------------------------
# The run dir holds, per node N: nN.properties, nN.pid, nN.log (log4j),
# nN.out (JVM stdout/stderr) and data/nN (log.dirs); for the cluster:
# cluster.env (settings that start-node must reuse) and brokers.

# load_state reads cluster.env, written by `up`: nodes, cluster_id,
# lib_dir, kafka_version and port_prefix as they were when the cluster was
# formatted.
load_state() {
  [[ -f $run_dir/cluster.env ]] || die "no cluster in $run_dir (run: cluster.sh up)"
  # shellcheck source=/dev/null
  source "$run_dir/cluster.env"
}

node_ids() { seq 1 "$nodes"; }

# check_node_arg fails unless $1 is a node of the loaded cluster.
check_node_arg() {
  [[ ${1:-} =~ ^[1-9]$ ]] || die "node must be a number from 1 to $nodes, got '${1:-}'"
  (( $1 <= nodes )) || die "node $1 does not exist: the cluster has $nodes node(s)"
}

# node_pid prints the pid of node $1 when that process is running; it checks
# the command line too, so a pid reused by another process is not mistaken
# for the node (and a zombie, whose command line is gone, counts as exited).
node_pid() {
  local pidfile=$run_dir/n$1.pid pid
  [[ -f $pidfile ]] || return 1
  pid=$(<"$pidfile")
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  ps -ww -o args= -p "$pid" 2>/dev/null | grep -qF "kafka.Kafka $run_dir/n$1.properties" || return 1
  echo "$pid"
}

# client_port, ctrl_port and secured_port print node $1's client,
# controller and SASL_SSL ports.
client_port() { echo "${port_prefix}${1}092"; }
ctrl_port() { echo "${port_prefix}${1}093"; }
secured_port() { echo "${port_prefix}${1}094"; }

# node_ports prints the ports node $1 listens on.
node_ports() {
  client_port "$1"
  ctrl_port "$1"
  if [[ $security == sasl_ssl ]]; then secured_port "$1"; fi
}

# port_in_use succeeds when something accepts connections on 127.0.0.1:$1.
port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# write_properties writes nN.properties for node $1 (see REAL_KAFKA.md).
write_properties() {
  local n=$1 rf=3 min_isr=2 voters="" i
  if (( nodes == 1 )); then rf=1; min_isr=1; fi
  for i in $(node_ids); do voters+="${voters:+,}$i@127.0.0.1:$(ctrl_port "$i")"; done
  cat >"$run_dir/n$n.properties" <<EOF
# Node $n of $nodes, written by integration/kafka/cluster.sh.
process.roles=broker,controller
node.id=$n
controller.quorum.voters=$voters
listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(ctrl_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(client_port "$n")
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$run_dir/data/n$n

# Durability as in production: tests must create topics explicitly.
auto.create.topics.enable=false
default.replication.factor=$rf
min.insync.replicas=$min_isr
unclean.leader.election.enable=false
offsets.topic.replication.factor=$rf
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$min_isr
share.coordinator.state.topic.replication.factor=$rf
share.coordinator.state.topic.min.isr=$min_isr

# Test speed: few internal partitions, no initial rebalance delay, and
# timed-out transactions aborted within seconds (default every 10 s).
offsets.topic.num.partitions=8
transaction.state.log.num.partitions=8
share.coordinator.state.topic.num.partitions=8
group.initial.rebalance.delay.ms=0
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
# A test suite deletes hundreds of topics; their files go after 1 s instead
# of 60, so that a node SIGKILLed later does not spend its restart on them.
file.delete.delay.ms=1000

# Small footprint: several nodes share 2 cores and small heaps.
num.network.threads=2
num.io.threads=4
background.threads=4
num.replica.fetchers=1
# Two: a SIGKILLed node recovers every partition's log on restart, and
# after a suite's hundreds of partitions one took over 120 s with one thread.
num.recovery.threads.per.data.dir=2
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=16777216
EOF
  if [[ $security == sasl_ssl ]]; then
    write_secured_properties "$n" >>"$run_dir/n$n.properties"
  fi
  if [[ -n ${EXACTLY_KAFKA_BROKER_PROPS:-} ]]; then
    printf '\n# EXACTLY_KAFKA_BROKER_PROPS\n%s\n' "$EXACTLY_KAFKA_BROKER_PROPS" >>"$run_dir/n$n.properties"
  fi
}

# write_secured_properties prints the properties that add node $1's
# SASL_SSL listener and the ACL authorizer; later lines override the
# plaintext ones above. The keystore password is in the file, which only
# its owner reads.
write_secured_properties() {
  local n=$1 store_pw
  store_pw=$(<"$run_dir/tls/store.pw")
  cat <<EOF

# Secured (--security sasl_ssl): a SASL_SSL listener, SCRAM-SHA-512 over
# TLS, beside the plaintext ones; nodes still talk to each other over
# PLAINTEXT and CONTROLLER.
listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),CONTROLLER://127.0.0.1:$(ctrl_port "$n"),SASL_SSL://127.0.0.1:$(secured_port "$n")
advertised.listeners=PLAINTEXT://127.0.0.1:$(client_port "$n"),SASL_SSL://127.0.0.1:$(secured_port "$n")
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.ssl.keystore.type=PKCS12
listener.name.sasl_ssl.ssl.keystore.location=$run_dir/tls/broker.p12
listener.name.sasl_ssl.ssl.keystore.password=$store_pw
listener.name.sasl_ssl.ssl.key.password=$store_pw

# ACLs on. User:ANONYMOUS is the principal of the PLAINTEXT and CONTROLLER
# listeners only (SASL_SSL always authenticates a SCRAM user): a super
# user, so that the nodes and the plaintext suite work as before.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:admin;User:ANONYMOUS
allow.everyone.if.no.acl.found=false
EOF
}

# make_tls writes a throwaway CA and a broker certificate for 127.0.0.1 and
# localhost (signed by the CA) into $run_dir/tls: ca.pem for clients, the
# broker's PKCS12 keystore (openssl) and a PKCS12 truststore of the CA
# (keytool, for Kafka's own CLI tools), under a random store password.
make_tls() {
  local d=$run_dir/tls keytool=${JAVA_HOME:+$JAVA_HOME/bin/}keytool pw
  command -v openssl >/dev/null || die "openssl not found: --security sasl_ssl needs it"
  command -v "$keytool" >/dev/null || die "keytool not found: --security sasl_ssl needs it (it comes with the JDK)"
  mkdir -p "$d"
  chmod 700 "$d"
  pw=$(openssl rand -hex 16)
  printf '%s\n' "$pw" >"$d/store.pw"
  {
    openssl req -x509 -newkey rsa:2048 -nodes -days 7 -subj "/CN=exactly-kafka throwaway CA" \
      -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
      -keyout "$d/ca-key.pem" -out "$d/ca.pem"
    openssl req -newkey rsa:2048 -nodes -subj "/CN=localhost" -keyout "$d/broker-key.pem" -out "$d/broker.csr"
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nkeyUsage=critical,digitalSignature,keyEncipherment\n' >"$d/broker.ext"
    openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca-key.pem" -CAcreateserial \
      -days 7 -extfile "$d/broker.ext" -out "$d/broker.pem"
    openssl pkcs12 -export -name broker -in "$d/broker.pem" -inkey "$d/broker-key.pem" -certfile "$d/ca.pem" \
      -passout "pass:$pw" -out "$d/broker.p12"
    "$keytool" -importcert -noprompt -alias ca -file "$d/ca.pem" -storetype PKCS12 \
      -keystore "$d/truststore.p12" -storepass "$pw"
  } >"$d/make.out" 2>&1 || { cat "$d/make.out" >&2; die "making the TLS files failed"; }
}

# make_users picks random SCRAM passwords for admin and app and writes
# secured.env and admin-client.properties (mode 0600).
make_users() {
  local admin_pw app_pw brokers="" n
  admin_pw=$(openssl rand -hex 16)
  app_pw=$(openssl rand -hex 16)
  for n in $(node_ids); do brokers+="${brokers:+,}127.0.0.1:$(secured_port "$n")"; done
  (
    umask 077
    {
      printf 'KAFKA_SECURED_BROKERS=%q\n' "$brokers"
      printf 'KAFKA_SECURED_CA_FILE=%q\n' "$run_dir/tls/ca.pem"
      printf 'KAFKA_SECURED_USER=app\n'
      printf 'KAFKA_SECURED_PASSWORD=%q\n' "$app_pw"
      printf 'KAFKA_SECURED_ADMIN_USER=admin\n'
      printf 'KAFKA_SECURED_ADMIN_PASSWORD=%q\n' "$admin_pw"
    } >"$run_dir/secured.env"
    cat >"$run_dir/admin-client.properties" <<EOF
# For the CLI tools of a Kafka distribution, as admin, e.g.
# kafka-acls.sh --bootstrap-server
# $brokers --command-config $run_dir/admin-client.properties --list
security.protocol=SASL_SSL
sasl.mechanism=SCRAM-SHA-512
sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username="admin" password="$admin_pw";
ssl.truststore.type=PKCS12
ssl.truststore.location=$run_dir/tls/truststore.p12
ssl.truststore.password=$(<"$run_dir/tls/store.pw")
EOF
  )
}

# scram_args prints, one per line, the StorageTool format arguments that
# create the users of secured.env.
scram_args() {
  # shellcheck source=/dev/null
  source "$run_dir/secured.env"
  printf '%s\n' --add-scram "SCRAM-SHA-512=[name=$KAFKA_SECURED_ADMIN_USER,password=$KAFKA_SECURED_ADMIN_PASSWORD]" \
    --add-scram "SCRAM-SHA-512=[name=$KAFKA_SECURED_USER,password=$KAFKA_SECURED_PASSWORD]"
}

# start_java launches node $1 detached (own session, so it outlives this
# script and the caller's process group) and records its pid.
start_java() {
  local n=$1
  # A stale pid file from the previous run of this node would make the
  # waits below look at a dead pid.
  rm -f "$run_dir/n$n.pid"
  # setsid(1) is Linux-only; without it nohup still shields the node from SIGHUP.
  local detach=(nohup)
  command -v setsid >/dev/null && detach=(setsid)
  # The inner shell writes its own pid, then execs java, so the pid file
  # holds the JVM's pid.
  # shellcheck disable=SC2086 # heap_opts and jvm_opts are lists of flags
  "${detach[@]}" bash -c 'echo $$ >"$1"; shift; exec "$@"' _ "$run_dir/n$n.pid" \
    "$java" $heap_opts $jvm_opts \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dlog4j2.configurationFile="$run_dir/log4j2.xml" \
    -Dexactly.kafka.log="$run_dir/n$n.log" \
    -Dkafka.logs.dir="$run_dir" \
    -cp "$lib_dir/*" \
    kafka.Kafka "$run_dir/n$n.properties" \
    </dev/null >>"$run_dir/n$n.out" 2>&1 &
  # Not a job of this shell: no "Killed" notice if kill-node or a failed
  # `up` ends it while this script still runs.
  disown "$!"
  # Wait (briefly) for the pid file so callers can rely on it.
  local i
  for i in $(seq 50); do
    [[ -s $run_dir/n$n.pid ]] && return 0
    sleep 0.1
  done
  die "node $n: no pid file after 5 s"
}

# print_tails shows the end of each given node's logs, for failures.
print_tails() {
  local n f
  for n in "$@"; do
    for f in "$run_dir/n$n.log" "$run_dir/n$n.out"; do
      [[ -s $f ]] || continue
      printf '\n===== %s (last 40 lines) =====\n' "$f" >&2
      tail -n 40 "$f" >&2
    done
  done
}

# wait_started waits until each node in "$@" (given as N:OFFSET, OFFSET being
# the size of nN.log before the start) logs "Kafka Server started", which a
# KRaft broker prints once it has joined the quorum and been unfenced. Fails
# early when a node exits, and after $wait_secs.
wait_started() {
  local deadline=$((SECONDS + wait_secs)) pending=("$@") still item n off
  while ((${#pending[@]})); do
    still=()
    for item in "${pending[@]}"; do
      n=${item%%:*} off=${item#*:}
      # grep reads to the end (no -q): with pipefail, a grep -q that
      # quits at the match kills tail with SIGPIPE once the log after the
      # match exceeds a pipe buffer (a restart replaying many partitions),
      # and the node would never count as started.
      if tail -c "+$((off + 1))" "$run_dir/n$n.log" 2>/dev/null | grep 'Kafka Server started' >/dev/null; then
        continue
      fi
      if ! node_pid "$n" >/dev/null; then
        print_tails "$n"
        die "node $n exited during startup (logs above)"
      fi
      still+=("$item")
    done
    pending=("${still[@]+"${still[@]}"}")
    ((${#pending[@]})) || break
    if ((SECONDS >= deadline)); then
      local waiting=()
      for item in "${pending[@]}"; do waiting+=("${item%%:*}"); done
      print_tails "${waiting[@]}"
      die "node(s) ${waiting[*]} did not start within ${wait_secs}s (logs above)"
    fi
    sleep 0.5
  done
}

# log_size prints the size of file $1 in bytes, 0 when it does not exist.
log_size() { if [[ -f $1 ]]; then wc -c <"$1" | tr -d ' '; else echo 0; fi; }

# --- stopping -------------------------------------------------------------

# wait_exit waits up to $2 seconds for node $1 to exit; returns 1 on timeout.
wait_exit() {
  local n=$1 deadline=$((SECONDS + $2))
  while node_pid "$n" >/dev/null; do
    ((SECONDS < deadline)) || return 1
    sleep 0.2
  done
}

# --- commands -------------------------------------------------------------

cmd_up() {
  nodes=3
  security=${EXACTLY_KAFKA_SECURITY:-plaintext}
  local txn_version=""
  while (($#)); do
    case $1 in
      --nodes) nodes=${2:?--nodes needs a value}; shift 2 ;;
      --nodes=*) nodes=${1#*=}; shift ;;
      --transaction-version) txn_version=${2:?--transaction-version needs a value}; shift 2 ;;
      --transaction-version=*) txn_version=${1#*=}; shift ;;
      --security) security=${2:?--security needs a value}; shift 2 ;;
      --security=*) security=${1#*=}; shift ;;
      *) die "up: unknown argument '$1' (try: up [--nodes N] [--transaction-version V] [--security sasl_ssl])" ;;
    esac
  done
  security=$(tr '[:upper:]' '[:lower:]' <<<"$security")
  [[ $security == plaintext || $security == sasl_ssl ]] || die "--security (or EXACTLY_KAFKA_SECURITY) must be plaintext or sasl_ssl, got '$security'"
  [[ $nodes =~ ^[1-9]$ ]] || die "--nodes must be 1 to 9, got '$nodes'"
  ((nodes == 1 || nodes >= 3)) || die "--nodes must be 1 or at least 3 (replication factor 3 needs 3 nodes)"
  [[ -z $txn_version || $txn_version =~ ^[0-9]+$ ]] || die "--transaction-version must be a number, got '$txn_version'"
  # 3N092 would pass 32767 (the ephemeral range) from node 3 on.
  [[ $port_prefix =~ ^[12]$ ]] || die "EXACTLY_KAFKA_PORT_PREFIX must be 1 or 2 (ports stay below 32768), got '$port_prefix'"

  fetch
  check_java

  # A fresh cluster every time: stop whatever an earlier `up` left running.
  if [[ -e $run_dir ]]; then
    log "removing the previous cluster in $run_dir"
    cmd_down
  fi

  local n port
  for n in $(node_ids); do
    for port in $(node_ports "$n"); do
      ! port_in_use "$port" || die "port 127.0.0.1:$port is in use by another process"
    done
  done

  mkdir -p "$run_dir/data"
  touch "$run_dir/$marker"
  cp "$script_dir/log4j2.xml" "$run_dir/log4j2.xml"
  local scram=()
  if [[ $security == sasl_ssl ]]; then
    make_tls
    make_users
    mapfile -t scram < <(scram_args)
  fi

  local cluster_id
  cluster_id=$("$java" -Dlog4j2.configurationFile="$run_dir/log4j2.xml" \
    -Dexactly.kafka.log="$run_dir/format.log" -cp "$lib_dir/*" \
    kafka.tools.StorageTool random-uuid)
  local feature=()
  [[ -z $txn_version ]] || feature=(--feature "transaction.version=$txn_version")

  local brokers=""
  for n in $(node_ids); do
    write_properties "$n"
    "$java" -Dlog4j2.configurationFile="$run_dir/log4j2.xml" \
      -Dexactly.kafka.log="$run_dir/format.log" -cp "$lib_dir/*" \
      kafka.tools.StorageTool format -t "$cluster_id" -c "$run_dir/n$n.properties" \
      ${feature[@]+"${feature[@]}"} ${scram[@]+"${scram[@]}"} >>"$run_dir/format.out" 2>&1 \
      || { cat "$run_dir/format.out" >&2; die "formatting node $n failed"; }
    brokers+="${brokers:+,}127.0.0.1:$(client_port "$n")"
  done

  # Everything start-node needs later, even from another shell or a test.
  {
    printf 'nodes=%q\n' "$nodes"
    printf 'cluster_id=%q\n' "$cluster_id"
    printf 'kafka_version=%q\n' "$kafka_version"
    printf 'lib_dir=%q\n' "$lib_dir"
    printf 'txn_version=%q\n' "$txn_version"
    printf 'port_prefix=%q\n' "$port_prefix"
    printf 'security=%q\n' "$security"
    printf 'script=%q\n' "$script_dir/cluster.sh"
  } >"$run_dir/cluster.env"

  local waits=() pid
  for n in $(node_ids); do
    start_java "$n"
    waits+=("$n:0")
  done
  if ! (wait_started "${waits[@]}"); then
    # Leave logs for inspection but no processes behind.
    for n in $(node_ids); do
      if pid=$(node_pid "$n"); then kill -KILL "$pid" 2>/dev/null || true; fi
    done
    die "up failed; logs are in $run_dir (cluster.sh down removes them)"
  fi
  # Written last: its presence means the cluster came up.
  printf '%s\n' "$brokers" >"$run_dir/brokers"
  local secured=""
  [[ $security == plaintext ]] || secured=", SASL_SSL listener and ACLs"
  log "Kafka $kafka_version up: $nodes node(s)${txn_version:+, transaction.version=$txn_version}$secured, run dir $run_dir"
  echo "KAFKA_BROKERS=$brokers"
  if [[ $security == sasl_ssl ]]; then
    log "SASL_SSL users, their passwords and the CA file: $run_dir/secured.env"
    echo "KAFKA_SECURED_BROKERS=$(cmd_brokers --security sasl_ssl)"
  fi
}

cmd_down() {
  if [[ ! -e $run_dir ]]; then
    return 0
  fi
  if [[ ! -e $run_dir/$marker ]] && [[ -n $(ls -A "$run_dir") ]]; then
    die "$run_dir was not made by cluster.sh (no $marker); not touching it"
  fi
  local pids=() n pid f
  # Every nN.pid, whatever the node count: also covers a half-made cluster.
  shopt -s nullglob
  for f in "$run_dir"/n*.pid; do
    n=${f##*/n}; n=${n%.pid}
    if pid=$(node_pid "$n"); then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$n")
    fi
  done
  shopt -u nullglob
  # SIGTERM all at once, then give them a bounded time: the last nodes of a
  # combined cluster can hang in controlled shutdown once the quorum is gone,
  # and the data is deleted anyway.
  local down_wait=${EXACTLY_KAFKA_DOWN_WAIT:-20}
  for n in ${pids[@]+"${pids[@]}"}; do
    if ! wait_exit "$n" "$down_wait"; then
      log "node $n did not exit within ${down_wait}s of SIGTERM; sending SIGKILL"
      if pid=$(node_pid "$n"); then kill -KILL "$pid" 2>/dev/null || true; fi
      wait_exit "$n" 10 || die "node $n (pid $pid) survived SIGKILL"
    fi
  done
  rm -rf "$run_dir"
  ((${#pids[@]} == 0)) || log "stopped ${#pids[@]} node(s), removed $run_dir"
}

cmd_stop_node() {
  load_state
  check_node_arg "${1:-}"
  local pid
  pid=$(node_pid "$1") || { log "node $1 is not running"; return 0; }
  kill -TERM "$pid"
  wait_exit "$1" "$stop_wait_secs" || die "node $1 (pid $pid) still running ${stop_wait_secs}s after SIGTERM"
  log "node $1 stopped"
}

cmd_kill_node() {
  load_state
  check_node_arg "${1:-}"
  local pid
  pid=$(node_pid "$1") || { log "node $1 is not running"; return 0; }
  kill -KILL "$pid"
  wait_exit "$1" 10 || die "node $1 (pid $pid) still running after SIGKILL"
  log "node $1 killed"
}

cmd_start_node() {
  load_state
  check_node_arg "${1:-}"
  check_java
  if node_pid "$1" >/dev/null; then
    log "node $1 is already running"
    return 0
  fi
  local off port
  for port in $(node_ports "$1"); do
    ! port_in_use "$port" || die "port 127.0.0.1:$port is in use by another process"
  done
  off=$(log_size "$run_dir/n$1.log")
  start_java "$1"
  wait_started "$1:$off"
  log "node $1 started"
}

cmd_status() {
  load_state
  local n pid
  local secured=""
  [[ $security == plaintext ]] || secured=", SASL_SSL listener and ACLs"
  echo "Kafka $kafka_version, $nodes node(s)${txn_version:+, transaction.version=$txn_version}$secured, run dir $run_dir"
  for n in $(node_ids); do
    if pid=$(node_pid "$n"); then
      if [[ $security == sasl_ssl ]]; then
        echo "node $n: running (pid $pid) 127.0.0.1:$(client_port "$n"), SASL_SSL 127.0.0.1:$(secured_port "$n")"
      else
        echo "node $n: running (pid $pid) 127.0.0.1:$(client_port "$n")"
      fi
    else
      echo "node $n: stopped"
    fi
  done
}

cmd_brokers() {
  [[ -f $run_dir/brokers ]] || die "no cluster in $run_dir (run: cluster.sh up)"
  local want=plaintext
  case ${1:-} in
    "") ;;
    --security) want=${2:?--security needs a value} ;;
    --security=*) want=${1#*=} ;;
    *) die "brokers: unknown argument '$1' (try: brokers [--security sasl_ssl])" ;;
  esac
  case $(tr '[:upper:]' '[:lower:]' <<<"$want") in
    plaintext) cat "$run_dir/brokers" ;;
    sasl_ssl)
      [[ -f $run_dir/secured.env ]] || die "the cluster in $run_dir has no SASL_SSL listener (run: cluster.sh up --security sasl_ssl)"
      # shellcheck source=/dev/null
      (source "$run_dir/secured.env" && echo "$KAFKA_SECURED_BROKERS")
      ;;
    *) die "brokers: --security must be plaintext or sasl_ssl, got '$want'" ;;
  esac
}

main() {
  local cmd=${1:-}
  (($#)) && shift
  case $cmd in
    fetch) fetch ;;
    up) cmd_up "$@" ;;
    down) cmd_down ;;
    stop-node) cmd_stop_node "$@" ;;
    kill-node) cmd_kill_node "$@" ;;
    start-node) cmd_start_node "$@" ;;
    status) cmd_status ;;
    brokers) cmd_brokers "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
  esac
}

main "$@"
