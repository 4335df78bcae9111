#!/usr/bin/env bash
# test.sh: run the integration suite on real Apache Kafka, once on a cluster
# formatted with transaction protocol v2 (KIP-890, Kafka 4's default) and once
# with transaction.version=1, since users run both. Each cluster is started
# fresh and always stopped, also when the tests fail. On the v2 cluster a
# short chaos soak with broker kills follows the suite (EXACTLY_NO_CHAOS=1
# skips it, EXACTLY_CHAOS_DURATION sets its length, 3m by default). Extra
# arguments go to `go test` (e.g. -run TestOneInstance).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here/../.."
cluster="$here/cluster.sh"
trap 'bash "$cluster" down >/dev/null 2>&1 || true' EXIT

rc=0
for tv in 2 1; do
	echo "== Apache Kafka, transaction.version=$tv"
	bash "$cluster" up --transaction-version "$tv" >/dev/null
	start=$(date +%s)
	# -p 1: the cluster package's test kills brokers; nothing may run beside it.
	# -skip: the broker-fault tests inject faults through kfake's control API,
	# so they start kfake clusters of their own whatever KAFKA_BROKERS says;
	# `make test` runs them.
	# The cluster package's node-crash test first, on the fresh cluster: a
	# node SIGKILLed after the suite has to recover and delete the suite's
	# hundreds of partitions on restart, which on two busy cores took over
	# 200 s (EXACTLY_KAFKA_WAIT) in CI.
	for pkg in ./internal/cluster ./integration; do
		if ! EXACTLY_KAFKA_WAIT=200 KAFKA_BROKERS="$(bash "$cluster" brokers)" go test -race -count=1 -p 1 -timeout 40m \
			-skip '^(TestBrokerFaults|TestTransactionTimeoutIsNotFencing)$' "$@" "$pkg"; then
			rc=1
		fi
	done
	echo "== transaction.version=$tv: suite took $(( $(date +%s) - start ))s"
	if [ "$tv" = 2 ] && [ -z "${EXACTLY_NO_CHAOS:-}" ]; then
		# A short chaos soak with broker kills: instances SIGKILLed,
		# restarted, frozen and scaled while brokers die and come back. On
		# a fresh cluster: after the suite's hundreds of partitions a
		# SIGKILLed node once took over 120 s to recover on two busy cores.
		start=$(date +%s)
		bash "$cluster" up --transaction-version "$tv" >/dev/null
		if ! EXACTLY_KAFKA_WAIT=170 make -s chaos DURATION="${EXACTLY_CHAOS_DURATION:-3m}" KAFKA_BROKERS="$(bash "$cluster" brokers)" \
			KAFKA_DIR="${EXACTLY_KAFKA_DIR:-/tmp/exactly-kafka-cluster}"; then
			rc=1
		fi
		echo "== transaction.version=$tv: chaos soak took $(( $(date +%s) - start ))s"
	fi
	bash "$cluster" down >/dev/null
done
exit $rc
