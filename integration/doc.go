// Package integration runs whole exactly pipelines against real brokers:
// an in-process kfake cluster by default, or the cluster named by
// KAFKA_BROKERS (a comma-separated bootstrap list) when it is set, so the
// same suite runs on Apache Kafka, Redpanda or any Kafka-protocol cluster.
//
// Every test asserts the invariants of DESIGN.md ("Invariants the tests
// prove") on the real topics (E1-E3, E5 through orders.Verify) and on the
// instances' local state (E4 through orders.CheckLocalState). On a shared cluster each test uses its
// own topic prefix and consumer groups.
//
// The mirror tests (mirror_test.go) run `exactly mirror` processes from a
// source to a target cluster: two in-process kfake clusters by default, or
// KAFKA_BROKERS (source) and KAFKA_TARGET_BROKERS (target) when both are
// set; KAFKA_TARGET_DIR, the target's integration/kafka/cluster.sh run
// directory, lets a test kill the target's broker. They check the copy with
// mirror.Verify.
package integration
