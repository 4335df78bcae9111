// Package admin holds the operator checks of a pipeline: topic
// provisioning (CreateTopics, CheckTopics) and the doctor (Doctor), which
// inspects brokers, partition replication, the two consumer groups' lag
// and the open transactions that hold the last stable offset back.
//
// Every check returns a structured report and never prints: the exactly
// command renders it as a table or as JSON and maps its severity to an
// exit status. The checks only read the cluster, except CreateTopics,
// which creates missing topics and never alters existing ones.
package admin
