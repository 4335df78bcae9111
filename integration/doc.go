// Package integration runs whole exactly pipelines against real brokers:
// an in-process kfake cluster by default, or the cluster named by
// KAFKA_BROKERS (a comma-separated bootstrap list) when it is set, so the
// same suite runs on Apache Kafka, Redpanda or any Kafka-protocol cluster.
//
// Every test asserts the invariants of DESIGN.md ("Invariants the tests
// prove") on the real topics (E1-E3, E5 through orders.Verify) and on the
// instances' local state (E4 through orders.CheckLocalState). On a shared cluster each test uses its
// own topic prefix and consumer groups.
package integration
