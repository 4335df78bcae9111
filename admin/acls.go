package admin

import (
	"fmt"
	"slices"
	"strings"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// ACL is one permission a principal needs: ALLOW Operation on the
// resource of type Resource named Name (the exact name with
// kmsg.ACLResourcePatternTypeLiteral, every name starting with it with
// kmsg.ACLResourcePatternTypePrefixed), from any host.
//
// The sets this package generates are minimal under Kafka's implication
// rules: READ, WRITE, DELETE and ALTER imply DESCRIBE, ALTER_CONFIGS
// implies DESCRIBE_CONFIGS. An entry is listed only when nothing else in
// the set implies it, so that every entry is needed.
type ACL struct {
	Resource  kmsg.ACLResourceType        `json:"resource"`
	Name      string                      `json:"name"`
	Pattern   kmsg.ACLResourcePatternType `json:"pattern"`
	Operation kmsg.ACLOperation           `json:"operation"`
	// Why says what needs the permission.
	Why string `json:"why"`
}

// String names the ACL: "READ on TOPIC orders (LITERAL)".
func (a ACL) String() string {
	return fmt.Sprintf("%s on %s %s (%s)", a.Operation, a.Resource, a.Name, a.Pattern)
}

// key identifies the permission, whatever Why says.
func (a ACL) key() string { return a.String() }

// Command returns the kafka-acls.sh command line that grants a to
// principal ("User:alice"). It reads the brokers from $BROKERS and the
// admin client's settings (security) from $ADMIN_CONFIG, a properties file.
func (a ACL) Command(principal string) string {
	var res string
	switch a.Resource {
	case kmsg.ACLResourceTypeTopic:
		res = "--topic " + shellQuote(a.Name)
	case kmsg.ACLResourceTypeGroup:
		res = "--group " + shellQuote(a.Name)
	case kmsg.ACLResourceTypeTransactionalId:
		res = "--transactional-id " + shellQuote(a.Name)
	case kmsg.ACLResourceTypeCluster:
		res = "--cluster"
	default:
		res = "--" + strings.ToLower(a.Resource.String()) + " " + shellQuote(a.Name)
	}
	return fmt.Sprintf(`kafka-acls.sh --bootstrap-server "$BROKERS" --command-config "$ADMIN_CONFIG" --add --allow-principal %s --operation %s %s --resource-pattern-type %s`,
		shellQuote(principal), kafkaACLsOperation(a.Operation), res, strings.ToLower(a.Pattern.String()))
}

// kafkaACLsOperation spells op as kafka-acls.sh's --operation does:
// Read, DescribeConfigs, IdempotentWrite.
func kafkaACLsOperation(op kmsg.ACLOperation) string {
	var b strings.Builder
	for w := range strings.SplitSeq(strings.ToLower(op.String()), "_") {
		if w != "" {
			b.WriteString(strings.ToUpper(w[:1]) + w[1:])
		}
	}
	return b.String()
}

// shellQuote quotes s for a POSIX shell when it holds anything but
// letters, digits and -_.:/*.
func shellQuote(s string) string {
	if s != "" && !strings.ContainsFunc(s, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("-_.:/", r))
	}) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// Role is what a principal does with a pipeline; RequiredACLs lists what
// each needs.
type Role string

// Roles.
const (
	// RoleInstance runs instances of the stages (`run`): it consumes the
	// inputs, writes the outputs, dead-letter topics and changelogs in
	// transactions, reads the changelogs to restore, reads the changelogs'
	// configs at start (cleanup.policy) and is a member of the group.
	RoleInstance Role = "instance"
	// RoleReset is what `reset` (or `run --reset-state`) needs: the ACLs
	// of RoleInstance, and DELETE and CREATE on the changelogs, which it
	// deletes and creates again before writing their first records
	// without a transaction.
	RoleReset Role = "reset"
	// RoleTopics is the operator's `topics create|check`: it creates and
	// describes every topic of the pipeline.
	RoleTopics Role = "topics"
	// RoleDoctor is `doctor`: it describes the topics, their configs,
	// the groups and their offsets, the open transactions and their
	// producers, reads a few records to measure lag, and describes the
	// ACLs (the acls check).
	RoleDoctor Role = "doctor"
)

// Roles are every Role, in the order the documentation lists them.
var Roles = []Role{RoleInstance, RoleReset, RoleTopics, RoleDoctor}

// ACLOptions tunes RequiredACLs. The zero value is usable.
type ACLOptions struct {
	// InstanceID narrows the transactional-id ACL of RoleInstance to one
	// instance: the literal <group>-<instance id>, as the processor names
	// its transactional id. The default value is empty: the prefix
	// <group>- (PREFIXED), which every instance of the stage matches.
	InstanceID string
	// CreateTopics adds, to RoleInstance and RoleReset, CREATE on the
	// changelogs, outputs and dead-letter topics, which an instance
	// creates at start when they are missing (processor.CreateTopics, on
	// by default in package app). Without it, create the topics first
	// (RoleTopics); an instance never creates a topic that exists. The
	// default value is false.
	CreateTopics bool
	// LegacyIdempotentWrite adds IDEMPOTENT_WRITE on the CLUSTER to
	// RoleReset, whose offset records are written by an idempotent
	// producer outside any transaction: brokers before Kafka 2.8 require
	// it for that (KIP-679 made WRITE on any topic enough). Transactional
	// producers (every instance) never need it. The default value is
	// false.
	LegacyIdempotentWrite bool
}

// RequiredACLs returns the ACLs a principal in role needs for pipeline p:
// for RoleInstance and RoleReset, what an instance of every stage needs
// (one principal for all stages; give each stage its own principal with
// a Pipeline of that stage alone). The list has no duplicates and is
// ordered by stage, then resource.
func RequiredACLs(p Pipeline, role Role, o ACLOptions) ([]ACL, error) {
	var b aclSet
	switch role {
	case RoleInstance:
		for _, s := range p.Stages {
			b.instance(s, o)
		}
	case RoleReset:
		for _, s := range p.Stages {
			b.reset(s, o)
		}
	case RoleTopics:
		b.topics(p)
	case RoleDoctor:
		b.doctor(p)
	default:
		return nil, fmt.Errorf("admin: unknown role %q: want one of %v", role, Roles)
	}
	return b.acls, nil
}

// InstanceACLs is RequiredACLs(RoleInstance) for one stage.
func InstanceACLs(s Stage, o ACLOptions) []ACL {
	var b aclSet
	b.instance(s, o)
	return b.acls
}

// aclSet collects ACLs once each, in the order added.
type aclSet struct{ acls []ACL }

func (b *aclSet) add(res kmsg.ACLResourceType, name string, pattern kmsg.ACLResourcePatternType, why string, ops ...kmsg.ACLOperation) {
	for _, op := range ops {
		a := ACL{Resource: res, Name: name, Pattern: pattern, Operation: op, Why: why}
		if !slices.ContainsFunc(b.acls, func(x ACL) bool { return x.key() == a.key() }) {
			b.acls = append(b.acls, a)
		}
	}
}

func (b *aclSet) topic(name, why string, ops ...kmsg.ACLOperation) {
	b.add(kmsg.ACLResourceTypeTopic, name, kmsg.ACLResourcePatternTypeLiteral, why, ops...)
}

const (
	opRead            = kmsg.ACLOperationRead
	opWrite           = kmsg.ACLOperationWrite
	opCreate          = kmsg.ACLOperationCreate
	opDelete          = kmsg.ACLOperationDelete
	opDescribe        = kmsg.ACLOperationDescribe
	opDescribeConfigs = kmsg.ACLOperationDescribeConfigs
)

// instance adds what an instance of stage s needs; see RoleInstance.
func (b *aclSet) instance(s Stage, o ACLOptions) {
	for _, t := range s.Inputs {
		b.topic(t, "consumes the input, commits its offsets in transactions", opRead)
	}
	for _, t := range s.Globals {
		b.topic(t, "reads the topic of a global store, whole", opRead)
	}
	for _, t := range s.Outputs {
		b.topic(t, "writes outputs or dead letters in transactions", opWrite)
	}
	for _, t := range s.Changelogs {
		b.topic(t, "restores the store from its changelog", opRead)
		b.topic(t, "writes state changes in transactions", opWrite)
		b.topic(t, "checks the changelog is compacted at start", opDescribeConfigs)
	}
	for _, t := range s.Repartitions {
		b.topic(t, "purges the repartition records it consumed (DeleteRecords)", opDelete)
	}
	if o.CreateTopics {
		for _, t := range append(slices.Clone(s.Changelogs), s.Outputs...) {
			b.topic(t, "creates the topic at start when it is missing", opCreate)
		}
	}
	b.add(kmsg.ACLResourceTypeGroup, s.Group, kmsg.ACLResourcePatternTypeLiteral, "joins the consumer group, commits offsets", opRead)
	txn, pattern := s.Group+"-", kmsg.ACLResourcePatternTypePrefixed
	if o.InstanceID != "" {
		txn, pattern = s.Group+"-"+o.InstanceID, kmsg.ACLResourcePatternTypeLiteral
	}
	b.add(kmsg.ACLResourceTypeTransactionalId, txn, pattern, "begins, commits and aborts its transactions (transactional id <group>-<instance id>)", opWrite)
}

// reset adds what `reset` needs; see RoleReset.
func (b *aclSet) reset(s Stage, o ACLOptions) {
	b.instance(s, o)
	for _, t := range s.Changelogs {
		b.topic(t, "reset deletes the changelog", opDelete)
		b.topic(t, "reset creates the changelog again", opCreate)
	}
	if o.LegacyIdempotentWrite {
		b.add(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral,
			"reset writes offset records with an idempotent producer (brokers before 2.8)", kmsg.ACLOperationIdempotentWrite)
	}
}

// topics adds what `topics create|check` needs; see RoleTopics.
func (b *aclSet) topics(p Pipeline) {
	for _, t := range p.Topics() {
		b.topic(t, "topics check reads the topic's partitions", opDescribe)
		b.topic(t, "topics create creates the topic when missing", opCreate)
		b.topic(t, "topics check reads the topic's configs", opDescribeConfigs)
	}
	b.add(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral,
		"reads default.replication.factor (with --replication-factor -1)", opDescribeConfigs)
}

// doctor adds what `doctor` needs; see RoleDoctor.
func (b *aclSet) doctor(p Pipeline) {
	for _, t := range p.Topics() {
		b.topic(t, "lists offsets, reads records to count lag, describes producers (DescribeProducers needs READ)", opRead)
		b.topic(t, "reads min.insync.replicas and cleanup.policy", opDescribeConfigs)
	}
	for _, s := range p.Stages {
		b.add(kmsg.ACLResourceTypeGroup, s.Group, kmsg.ACLResourcePatternTypeLiteral, "describes the group and its committed offsets", opDescribe)
		b.add(kmsg.ACLResourceTypeTransactionalId, s.Group+"-", kmsg.ACLResourcePatternTypePrefixed, "lists and describes the stage's open transactions", opDescribe)
	}
	b.add(kmsg.ACLResourceTypeCluster, "kafka-cluster", kmsg.ACLResourcePatternTypeLiteral, "describes the ACLs (the acls check)", opDescribe)
}

// MirrorACLSpec describes a mirror (package mirror) for MirrorSourceACLs
// and MirrorTargetACLs.
type MirrorACLSpec struct {
	// Name is the mirror's name (mirror.New's name).
	Name string
	// Group is the source consumer group. The default value is Name.
	Group string
	// Topics are the mirrored source topics. A mirror that selects them
	// by a regular expression needs READ on each topic it matches (or a
	// PREFIXED ACL that covers them).
	Topics []string
	// RenamePrefix prefixes the target topics' names (mirror.RenamePrefix).
	// The default value is empty.
	RenamePrefix string
	// OffsetsTopic is the target topic of the mirror's positions. The
	// default value is <name>-mirror-offsets.
	OffsetsTopic string
	// CreateTopics adds what creating the target topics and the offsets
	// topic takes: CREATE on the target, and DESCRIBE_CONFIGS on the
	// source topics, whose settings the mirror copies. The mirror creates
	// them when they are missing. The default value is false.
	CreateTopics bool
}

// MirrorSourceACLs returns the ACLs a mirror needs on its source cluster.
func MirrorSourceACLs(m MirrorACLSpec) []ACL {
	var b aclSet
	for _, t := range m.Topics {
		b.topic(t, "mirror reads the source topic (read_committed)", opRead)
		if m.CreateTopics {
			b.topic(t, "mirror copies the topic's settings to the target topic it creates", opDescribeConfigs)
		}
	}
	group := m.Group
	if group == "" {
		group = m.Name
	}
	b.add(kmsg.ACLResourceTypeGroup, group, kmsg.ACLResourcePatternTypeLiteral, "mirror joins the source group that assigns partitions (it commits no offsets there)", opRead)
	return b.acls
}

// MirrorTargetACLs returns the ACLs a mirror needs on its target cluster.
func MirrorTargetACLs(m MirrorACLSpec) []ACL {
	var b aclSet
	offsets := m.OffsetsTopic
	if offsets == "" {
		offsets = m.Name + "-mirror-offsets"
	}
	for _, t := range m.Topics {
		b.topic(m.RenamePrefix+t, "mirror writes the copies in transactions", opWrite)
		if m.CreateTopics {
			b.topic(m.RenamePrefix+t, "mirror creates the target topic when missing", opCreate)
		}
	}
	b.topic(offsets, "mirror reads its positions at assignment", opRead)
	b.topic(offsets, "mirror writes its positions in the copies' transactions", opWrite)
	b.topic(offsets, "mirror checks the offsets topic is compacted", opDescribeConfigs)
	if m.CreateTopics {
		b.topic(offsets, "mirror creates the offsets topic when missing", opCreate)
	}
	b.add(kmsg.ACLResourceTypeTransactionalId, m.Name+"/", kmsg.ACLResourcePatternTypePrefixed, "transactional ids <name>/<topic>/<partition>", opWrite)
	return b.acls
}
