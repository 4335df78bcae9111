#!/usr/bin/env bash
# test.sh: run the integration suite on real Apache Kafka, once on a cluster
# formatted with transaction protocol v2 (KIP-890, Kafka 4's default) and once
# with transaction.version=1, since users run both. Each cluster is started
# fresh and always stopped, also when the tests fail. On the v2 cluster the
# mirror tests follow the suite, from the three-node cluster (the source) to a
# second, one-node cluster (the target, ports 2N092, run dir
# EXACTLY_KAFKA_TARGET_DIR, default /tmp/exactly-kafka-target), then a short
# chaos soak with broker kills (EXACTLY_NO_CHAOS=1 skips it,
# EXACTLY_CHAOS_DURATION sets its length, 3m by default, EXACTLY_CHAOS_FLAGS
# its flags, "--loops 2" by default). Extra arguments go
# to the suite's `go test` (e.g. -run TestOneInstance).
#
# The v2 cluster is a secured one (cluster.sh up --security sasl_ssl): beside
# the PLAINTEXT listener the suite uses, a SASL_SSL listener with ACLs on,
# through which the secured tests (integration/secured_test.go: pipeline,
# restore, zombie and the commands as child processes) run after the suite,
# their users and CA taken from the cluster's secured.env.
#
# test.sh --mirror runs only the mirror tests on a fresh v2 source and target,
# extra arguments going to their `go test`; test.sh --secured runs only the
# secured tests, on a fresh secured v2 cluster, likewise.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
cluster="$here/cluster.sh"
target_dir=${EXACTLY_KAFKA_TARGET_DIR:-/tmp/exactly-kafka-target}
run_dir=${EXACTLY_KAFKA_DIR:-/tmp/exactly-kafka-cluster}
# target runs cluster.sh on the target cluster.
target() { EXACTLY_KAFKA_DIR="$target_dir" EXACTLY_KAFKA_PORT_PREFIX=2 bash "$cluster" "$@"; }
trap 'bash "$cluster" down >/dev/null 2>&1 || true; target down >/dev/null 2>&1 || true' EXIT

# mirror_tests starts the one-node target beside the running source cluster,
# runs the mirror tests (extra arguments go to go test) and stops the target.
# The produce-hold test injects its fault through kfake's control API, so it
# starts kfake clusters of its own whatever the environment says; `make test`
# runs it.
mirror_tests() {
	local start rc=0 source_brokers target_brokers
	start=$(date +%s)
	# Checked one by one: called as `mirror_tests || rc=1`, set -e is off
	# here, and empty broker lists would make the tests run on kfake.
	target up --nodes 1 --transaction-version 2 >/dev/null || { echo "starting the target cluster failed"; return 1; }
	source_brokers=$(bash "$cluster" brokers) || return 1
	target_brokers=$(target brokers) || return 1
	if ! EXACTLY_KAFKA_WAIT=200 KAFKA_BROKERS="$source_brokers" KAFKA_TARGET_BROKERS="$target_brokers" \
		KAFKA_TARGET_DIR="$target_dir" go test -race -count=1 -p 1 -timeout 20m \
		-run '^TestMirror' -skip '^TestMirrorProduceHeldPastTimeout$' "$@" ./integration; then
		rc=1
	fi
	target down >/dev/null
	echo "== mirror tests (three-node source, one-node target) took $(( $(date +%s) - start ))s"
	return $rc
}

# secured_tests runs the secured tests through the running cluster's
# SASL_SSL listener (extra arguments go to go test).
secured_tests() {
	local start rc=0
	start=$(date +%s)
	# A subshell: the passwords stay out of this script's environment.
	if ! (
		set -a
		# shellcheck source=/dev/null
		source "$run_dir/secured.env"
		set +a
		go test -race -count=1 -p 1 -timeout 15m -run '^TestSecured$' "$@" ./integration
	); then
		rc=1
	fi
	echo "== secured tests (SASL_SSL, SCRAM-SHA-512, ACLs) took $(( $(date +%s) - start ))s"
	return $rc
}

if [ "${1:-}" = --secured ]; then
	shift
	echo "== Apache Kafka, transaction.version=2, SASL_SSL and ACLs: secured tests"
	bash "$cluster" up --transaction-version 2 --security sasl_ssl >/dev/null
	secured_tests "$@"
	exit
fi

if [ "${1:-}" = --mirror ]; then
	shift
	echo "== Apache Kafka, transaction.version=2: mirror tests"
	bash "$cluster" up --transaction-version 2 >/dev/null
	mirror_tests "$@"
	exit
fi

rc=0
for tv in 2 1; do
	echo "== Apache Kafka, transaction.version=$tv"
	security=plaintext
	if [ "$tv" = 2 ]; then security=sasl_ssl; fi
	bash "$cluster" up --transaction-version "$tv" --security "$security" >/dev/null
	start=$(date +%s)
	# -p 1: the cluster package's test kills brokers; nothing may run beside it.
	# -skip: the broker-fault tests inject faults through kfake's control API,
	# so they start kfake clusters of their own whatever KAFKA_BROKERS says;
	# `make test` runs them. The mirror tests run below, with a target, and
	# the secured tests too, through the SASL_SSL listener.
	# The cluster package's node-crash test first, on the fresh cluster: a
	# node SIGKILLed after the suite has to recover and delete the suite's
	# hundreds of partitions on restart, which on two busy cores took over
	# 200 s (EXACTLY_KAFKA_WAIT) in CI.
	for pkg in ./internal/cluster ./integration; do
		if ! EXACTLY_KAFKA_WAIT=200 KAFKA_BROKERS="$(bash "$cluster" brokers)" go test -race -count=1 -p 1 -timeout 40m \
			-skip '^(TestBrokerFaults|TestTransactionTimeoutIsNotFencing|TestMirror.*|TestSecured)$' "$@" "$pkg"; then
			rc=1
		fi
	done
	echo "== transaction.version=$tv: suite took $(( $(date +%s) - start ))s"
	if [ "$tv" = 2 ]; then
		secured_tests || rc=1
		mirror_tests || rc=1
		# The benchmark's Kafka Streams peer (bench/kstreams, built with
		# Maven) is checked exactly-once here: it does not run on kfake.
		start=$(date +%s)
		if ! KAFKA_BROKERS="$(bash "$cluster" brokers)" go test -race -count=1 -timeout 10m -run '^TestKStreamsPeer' ./internal/bench/; then
			rc=1
		fi
		echo "== Kafka Streams peer test took $(( $(date +%s) - start ))s"
	fi
	if [ "$tv" = 2 ] && [ -z "${EXACTLY_NO_CHAOS:-}" ]; then
		# A short chaos soak with broker kills: instances SIGKILLed,
		# restarted, frozen and scaled while brokers die and come back. On
		# a fresh cluster: after the suite's hundreds of partitions a
		# SIGKILLed node once took over 120 s to recover on two busy cores.
		# Two transaction loops per instance (--loops 2): the suite above
		# runs one, so the soak is where several loops sharing one state
		# directory meet real brokers' faults.
		start=$(date +%s)
		bash "$cluster" up --transaction-version "$tv" >/dev/null
		if ! EXACTLY_KAFKA_WAIT=170 make -s chaos DURATION="${EXACTLY_CHAOS_DURATION:-3m}" KAFKA_BROKERS="$(bash "$cluster" brokers)" \
			KAFKA_DIR="${EXACTLY_KAFKA_DIR:-/tmp/exactly-kafka-cluster}" CHAOS_FLAGS="${EXACTLY_CHAOS_FLAGS---loops 2}"; then
			rc=1
		fi
		echo "== transaction.version=$tv: chaos soak took $(( $(date +%s) - start ))s"
	fi
	bash "$cluster" down >/dev/null
done
exit $rc
