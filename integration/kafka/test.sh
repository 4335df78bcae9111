#!/usr/bin/env bash
# test.sh: run the integration suite on real Apache Kafka, once on a cluster
# formatted with transaction protocol v2 (KIP-890, Kafka 4's default) and once
# with transaction.version=1, since users run both. Each cluster is started
# fresh and always stopped, also when the tests fail. Extra arguments go to
# `go test` (e.g. -run TestOneInstance).
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
	if ! KAFKA_BROKERS="$(bash "$cluster" brokers)" go test -race -count=1 -p 1 -timeout 40m "$@" ./integration/...; then
		rc=1
	fi
	echo "== transaction.version=$tv: suite took $(( $(date +%s) - start ))s"
	bash "$cluster" down >/dev/null
done
exit $rc
