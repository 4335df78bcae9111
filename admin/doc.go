// Package admin holds the operator checks of a pipeline of exactly
// applications: topic provisioning (CreateTopics, CheckTopics) and the
// doctor (Doctor), which inspects brokers, partition replication, the
// stages' consumer groups and their lag, and the open transactions that
// hold a last stable offset back.
//
// A Pipeline is the stages of an application in data-flow order; a Stage
// is one consumer group running one topology, with its input, output and
// changelog topics. StageOf derives a stage from the topology itself, so
// any topology can be provisioned and checked:
//
//	stage := admin.StageOf(top, "my-app", "my-app-dlq")
//	p := admin.Pipeline{Stages: []admin.Stage{stage}}
//	r, err := admin.CreateTopics(ctx, cl, p, admin.TopicsConfig{Partitions: 6, ReplicationFactor: -1})
//	report, err := admin.Doctor(ctx, cl, p, admin.DoctorOptions{})
//
// The topics of a stage follow its first input: every input, output and
// changelog must have its partition count, as the processor requires and
// creates them.
//
// RequiredACLs lists the least-privilege ACLs of each role (an instance,
// reset, topics, the doctor) for a pipeline, generated from its stages;
// MirrorSourceACLs and MirrorTargetACLs those of a mirror. The doctor
// compares a principal's ACLs with them (DoctorOptions.ACLPrincipal).
//
// Every check returns a structured report and never prints: the exactly
// command renders it as a table or as JSON and maps its severity to an
// exit status. The checks only read the cluster, except CreateTopics,
// which creates missing topics and never alters existing ones. They take a
// plain *kgo.Client (no consumer group, no transactional id) and are safe
// to run while the pipeline runs.
package admin
