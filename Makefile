# exactly: exactly-once stream processing on Kafka-protocol brokers.
#
#   make demo        run the order pipeline on an embedded three-broker cluster
#   make test        unit and integration tests (embedded kfake cluster), race detector on
#   make test-kafka  the integration suite on a real three-node Apache Kafka cluster
#                    (started and stopped here unless KAFKA_BROKERS is set)
#   make test-mirror-kafka
#                    the mirror tests from a real three-node cluster to a one-node one
#   make chaos       a randomized soak: crashes, restarts, scaling, zombies, broker
#                    faults, idle phases, operator resets; DURATION=30m
#                    SEED=<printed seed> to replay one
#   make chaos-mirror  the same soak of `exactly mirror` between two embedded
#                    kfake clusters; DURATION, SEED as for chaos
#   make chaos-revenue the same soak of the revenue example (a repartition
#                    topic and punctuators); DURATION, SEED as for chaos
#   make chaos-enrich the same soak of the enrich example (a stream-table
#                    join); DURATION, SEED as for chaos
#   make db-up       start the test databases (PostgreSQL, MariaDB) and print the
#                    variables that point the tests at them:
#                    eval "$$(make -s db-up)" && make test
#   make db-down     stop them

GO        ?= go
PKGS      := ./...
KAFKA     := integration/kafka/cluster.sh
PG        := integration/db/postgres.sh
MARIADB   := integration/db/mariadb.sh
STATICCHECK_VERSION := v0.8.2

.PHONY: all build test test-kafka test-mirror-kafka chaos chaos-mirror chaos-revenue chaos-enrich kafka-up kafka-down db-up db-down lint vet fmt tidy demo bench bench-pipeline bench-quick bench-mirror bench-kstreams kstreams-build fuzz clean

all: build lint test

build:
	$(GO) build $(PKGS)
	$(GO) build -o bin/exactly ./cmd/exactly

test:
	$(GO) test -race -count=1 -timeout 30m $(PKGS)

demo:
	$(GO) run ./cmd/exactly demo

# The services end to end (order API, outbox relay, stream processor,
# payment sink) under random SIGKILLs on kfake and SQLite, then checked;
# DURATION=10m for a long run, SEED=<printed seed> to replay one.
.PHONY: demo-services
demo-services:
	$(GO) build -o bin/exactly ./cmd/exactly
	bin/exactly demo-services $(if $(DURATION),--duration $(DURATION)) $(if $(SEED),--seed $(SEED))

kafka-up:
	bash $(KAFKA) up

kafka-down:
	bash $(KAFKA) down

# db-up starts a private PostgreSQL (127.0.0.1:15432) and MariaDB
# (127.0.0.1:13306) for the database tests, or keeps them when they run, and
# prints the two variables internal/dbtest reads, as export lines for eval;
# make test, test-kafka and every other target pass them through untouched.
# db-down stops both; their data dirs (/tmp/exactly-pg, /tmp/exactly-mariadb)
# stay for a faster next start. The scripts' headers list their settings.
db-up:
	@bash $(PG) up
	@bash $(MARIADB) up
	@echo "export EXACTLY_TEST_POSTGRES_DSN='$$(bash $(PG) dsn)'"
	@echo "export EXACTLY_TEST_MYSQL_DSN='$$(bash $(MARIADB) dsn)'"

db-down:
	bash $(PG) down
	bash $(MARIADB) down

# test-kafka runs the integration suite (and the cluster helper's tests) on
# the brokers in KAFKA_BROKERS, or else on three-node Apache Kafka clusters it
# starts (transaction.version 2, then 1) and always stops.
test-kafka:
	@if [ -n "$$KAFKA_BROKERS" ]; then \
		$(GO) test -race -count=1 -p 1 -timeout 40m ./integration/...; \
	else \
		bash integration/kafka/test.sh; \
	fi

# test-mirror-kafka runs the mirror tests on KAFKA_BROKERS (source) and
# KAFKA_TARGET_BROKERS (target; KAFKA_TARGET_DIR, its cluster.sh run dir, lets
# a test kill its broker), or else on a three-node source and a one-node
# target it starts and always stops. test-kafka runs them too.
test-mirror-kafka:
	@if [ -n "$$KAFKA_BROKERS" ] && [ -n "$$KAFKA_TARGET_BROKERS" ]; then \
		$(GO) test -race -count=1 -p 1 -timeout 20m -run '^TestMirror' -skip '^TestMirrorProduceHeldPastTimeout$$' ./integration; \
	else \
		bash integration/kafka/test.sh --mirror; \
	fi

# chaos runs `exactly chaos` (instances built with the race detector) on an
# embedded kfake cluster with broker faults, or on KAFKA_BROKERS; set
# KAFKA_DIR to the run dir of integration/kafka/cluster.sh to kill and restart
# its brokers too. It exits 3 on any violation. The soak itself, which hosts
# the embedded cluster, is built without the race detector: kfake's
# fault-injection sleeps race on their own queue (kfake cluster.go, bsleep),
# which is not the code under test; its own code is raced in make test.
DURATION ?= 2m
SEED     ?= 0
CHAOS_FLAGS ?=
chaos:
	$(GO) build -race -o bin/exactly-race ./cmd/exactly
	$(GO) build -o bin/exactly ./cmd/exactly
	./bin/exactly chaos --instance-binary bin/exactly-race --duration $(DURATION) --seed $(SEED) \
		$(if $(KAFKA_BROKERS),--brokers $(KAFKA_BROKERS)) $(if $(KAFKA_DIR),--kafka-dir $(KAFKA_DIR)) $(CHAOS_FLAGS)

# chaos-mirror runs `exactly chaos --mode mirror`: mirror instances (built
# with the race detector) copy topics between two embedded kfake clusters
# with broker faults on both, or from KAFKA_BROKERS to KAFKA_TARGET_BROKERS.
# It exits 3 when source and target differ.
chaos-mirror:
	$(GO) build -race -o bin/exactly-race ./cmd/exactly
	$(GO) build -o bin/exactly ./cmd/exactly
	./bin/exactly chaos --mode mirror --instance-binary bin/exactly-race --duration $(DURATION) --seed $(SEED) \
		$(if $(KAFKA_BROKERS),--brokers $(KAFKA_BROKERS)) $(if $(KAFKA_TARGET_BROKERS),--target-brokers $(KAFKA_TARGET_BROKERS)) $(CHAOS_FLAGS)

# chaos-revenue runs `exactly chaos --mode revenue`: instances of
# `revenue run` (examples/revenue/cmd/revenue, built with the race detector) on an
# embedded kfake cluster with broker faults, or on KAFKA_BROKERS. After the
# drain it waits for the wall clock to close the last minute (85 s past its
# start, then until the output passes, at most 90 s more), then exits 3 when
# revenue.Check finds a violation.
chaos-revenue:
	$(GO) build -race -o bin/revenue-race ./examples/revenue/cmd/revenue
	$(GO) build -o bin/exactly ./cmd/exactly
	./bin/exactly chaos --mode revenue --instance-binary bin/revenue-race --duration $(DURATION) --seed $(SEED) \
		$(if $(KAFKA_BROKERS),--brokers $(KAFKA_BROKERS)) $(CHAOS_FLAGS)

# chaos-enrich runs `exactly chaos --mode enrich`: instances of `enrich run`
# (examples/enrich/cmd/enrich, built with the race detector) on an embedded
# kfake cluster with broker faults, or on KAFKA_BROKERS, while profile
# versions and then orders are written in timestamp order. It exits 3 when
# enrich.Check finds an order lost, enriched twice or with a profile other
# than its customer's as of its timestamp.
chaos-enrich:
	$(GO) build -race -o bin/enrich-race ./examples/enrich/cmd/enrich
	$(GO) build -o bin/exactly ./cmd/exactly
	./bin/exactly chaos --mode enrich --instance-binary bin/enrich-race --duration $(DURATION) --seed $(SEED) \
		$(if $(KAFKA_BROKERS),--brokers $(KAFKA_BROKERS)) $(CHAOS_FLAGS)

vet:
	$(GO) vet $(PKGS)

lint: vet
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION) $(PKGS)
	$(GO) mod tidy -diff

fmt:
	gofmt -w $$(git ls-files '*.go')

# fuzz runs each fuzz target for a fixed number of executions, about 10 s
# each on a 2-core machine (seed corpora run in make test). A count, not a
# duration: Go 1.26's coordinator can report a spurious "context deadline
# exceeded" failure when a -fuzztime duration expires mid-exec
# (go.dev/issue/75804, fixed in Go 1.27). FUZZTIME=30s (or 1000000x)
# overrides the budget of every target.
FUZZTIME ?=
FUZZ_TARGETS := FuzzBuild:./topology:200000x FuzzKeyIsolation:./state:80000x \
	FuzzCheckpointValue:./state:80000x FuzzParseOffsetRecord:./processor:50000x \
	FuzzDecodeOrder:./examples/orders:40000x
fuzz:
	@for t in $(FUZZ_TARGETS); do \
		name=$${t%%:*}; rest=$${t#*:}; pkg=$${rest%%:*}; budget=$${rest#*:}; \
		$(GO) test -run '^$$' -fuzz "^$$name$$" -fuzztime $(or $(FUZZTIME),$$budget) $$pkg || exit 1; \
	done

# bench runs the Go benchmarks of the hot paths and a quick pipeline bench;
# bench-pipeline takes the full figures of BENCHMARKS.md (about 8 minutes;
# set KAFKA_BROKERS=... EXACTLY_BROKERS=... for a real cluster).
#
# With java and mvn on PATH and KAFKA_BROKERS set, bench also runs the
# Kafka Streams peer side by side (bench-kstreams); Kafka Streams does not
# run on the embedded kfake cluster. Without them it says so and goes on.
bench:
	$(GO) test -run '^$$' -bench . -benchmem $(PKGS)
	$(GO) run ./cmd/exactly bench --quick
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
		echo "bench: no Kafka Streams side by side: it needs java and mvn on PATH"; \
	elif [ -z "$$KAFKA_BROKERS" ]; then \
		echo "bench: no Kafka Streams side by side: it needs a real cluster (KAFKA_BROKERS; make kafka-up starts one)"; \
	else $(MAKE) --no-print-directory bench-kstreams KSTREAMS_ORDERS=20000 KSTREAMS_FLAGS=--quick; fi

# kstreams-build builds the Kafka Streams peer of the bench (bench/kstreams,
# Maven; the first build fetches Kafka Streams from Maven Central into ~/.m2).
kstreams-build:
	cd bench/kstreams && mvn -q -B package

# bench-kstreams measures exactly and the Kafka Streams peer side by side on
# KAFKA_BROKERS (the figures of BENCHMARKS.md: 100,000 orders, commit
# intervals 100ms and 1s, one process of 1 and 2 loops/threads); KSTREAMS_ORDERS sets
# the input, KSTREAMS_FLAGS adds flags.
KSTREAMS_FLAGS ?=
KSTREAMS_ORDERS ?= 100000
bench-kstreams: kstreams-build
	$(GO) run ./cmd/exactly bench --brokers "$$KAFKA_BROKERS" --peer kstreams --orders $(KSTREAMS_ORDERS) \
		--skip pipeline,ceiling,alo,latency,restore,rss,scaling --commit-intervals 100ms,1s --peer-instances 1,2 --peer-loops $(KSTREAMS_FLAGS)

bench-quick:
	$(GO) run ./cmd/exactly bench --quick

bench-pipeline:
	$(GO) run ./cmd/exactly bench --repeat 3 --json --chart docs/bench-throughput.png > bench.json
	$(GO) run ./cmd/exactly bench --from bench.json

# bench-mirror takes the mirror figures of BENCHMARKS.md: two embedded kfake
# clusters, or EXACTLY_BROKERS (source) and EXACTLY_TARGET_BROKERS (target);
# MIRROR_FLAGS adds flags (--replication-factor 3, --skip latency, ...).
MIRROR_FLAGS ?=
bench-mirror:
	$(GO) run ./cmd/exactly bench --suite mirror --repeat 3 --instances 1,2 --json $(MIRROR_FLAGS) > bench-mirror.json
	$(GO) run ./cmd/exactly bench --from bench-mirror.json

clean:
	rm -rf bin

# static builds bin/exactly-static the way the Dockerfile builds the image's
# binary (keep the two alike) and checks it: statically linked, stripped,
# built without cgo and with -trimpath. The image itself needs a Docker
# engine: docker build -t exactly:dev .
.PHONY: static validate-deploy
STATIC_LDFLAGS := -s -w
static:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(STATIC_LDFLAGS)" -o bin/exactly-static ./cmd/exactly
	@file bin/exactly-static | grep -q 'statically linked' || { file bin/exactly-static; echo "bin/exactly-static: not statically linked"; exit 1; }
	@file bin/exactly-static | grep -q ', stripped' || { file bin/exactly-static; echo "bin/exactly-static: not stripped (-ldflags -s -w)"; exit 1; }
	@$(GO) version -m bin/exactly-static | grep -qx '.build.CGO_ENABLED=0' || { echo "bin/exactly-static: built with cgo"; exit 1; }
	@$(GO) version -m bin/exactly-static | grep -qx '.build.-trimpath=true' || { echo "bin/exactly-static: built without -trimpath"; exit 1; }
	@echo "bin/exactly-static: static, stripped, CGO_ENABLED=0, -trimpath"

# validate-deploy checks the Kubernetes manifests in deploy/kubernetes
# against the API schemas of the oldest and newest Kubernetes versions
# named in deploy/validate.sh, offline, and checks that deliberately broken
# copies (deploy/testdata/broken) fail. The manifests' agreement with the
# program (flags, ports, grace period) is TestDeployManifests in make test.
validate-deploy:
	bash deploy/validate.sh
