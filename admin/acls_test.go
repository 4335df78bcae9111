package admin

import (
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestMissingACLs: Kafka's matching rules, as the doctor applies them.
func TestMissingACLs(t *testing.T) {
	t.Parallel()
	const me = "User:app"
	topicRead := ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "orders", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead}
	topicDescribe := topicRead
	topicDescribe.Operation = kmsg.ACLOperationDescribe
	txn := ACL{Resource: kmsg.ACLResourceTypeTransactionalId, Name: "g-", Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationWrite}
	bind := func(principal string, res kmsg.ACLResourceType, name string, pat kmsg.ACLResourcePatternType, op kmsg.ACLOperation, perm kmsg.ACLPermissionType) kadm.DescribedACL {
		return kadm.DescribedACL{Principal: principal, Host: "*", Type: res, Name: name, Pattern: pat, Operation: op, Permission: perm}
	}
	allow, deny := kmsg.ACLPermissionTypeAllow, kmsg.ACLPermissionTypeDeny
	lit, pre := kmsg.ACLResourcePatternTypeLiteral, kmsg.ACLResourcePatternTypePrefixed
	topic, txnID := kmsg.ACLResourceTypeTopic, kmsg.ACLResourceTypeTransactionalId
	for _, tc := range []struct {
		name     string
		bindings []kadm.DescribedACL
		want     ACL
		granted  bool
	}{
		{"exact", []kadm.DescribedACL{bind(me, topic, "orders", lit, kmsg.ACLOperationRead, allow)}, topicRead, true},
		{"other principal", []kadm.DescribedACL{bind("User:x", topic, "orders", lit, kmsg.ACLOperationRead, allow)}, topicRead, false},
		{"any user", []kadm.DescribedACL{bind("User:*", topic, "orders", lit, kmsg.ACLOperationRead, allow)}, topicRead, true},
		{"wildcard name", []kadm.DescribedACL{bind(me, topic, "*", lit, kmsg.ACLOperationRead, allow)}, topicRead, true},
		{"prefix", []kadm.DescribedACL{bind(me, topic, "ord", pre, kmsg.ACLOperationRead, allow)}, topicRead, true},
		{"other prefix", []kadm.DescribedACL{bind(me, topic, "pay", pre, kmsg.ACLOperationRead, allow)}, topicRead, false},
		{"all", []kadm.DescribedACL{bind(me, topic, "orders", lit, kmsg.ACLOperationAll, allow)}, topicRead, true},
		{"write is not read", []kadm.DescribedACL{bind(me, topic, "orders", lit, kmsg.ACLOperationWrite, allow)}, topicRead, false},
		{"read implies describe", []kadm.DescribedACL{bind(me, topic, "orders", lit, kmsg.ACLOperationRead, allow)}, topicDescribe, true},
		{"deny wins", []kadm.DescribedACL{bind(me, topic, "*", lit, kmsg.ACLOperationAll, allow), bind(me, topic, "orders", lit, kmsg.ACLOperationRead, deny)}, topicRead, false},
		{"deny of another op", []kadm.DescribedACL{bind(me, topic, "orders", lit, kmsg.ACLOperationRead, allow), bind(me, topic, "orders", lit, kmsg.ACLOperationWrite, deny)}, topicRead, true},
		{"wanted prefix, shorter prefix", []kadm.DescribedACL{bind(me, txnID, "g", pre, kmsg.ACLOperationWrite, allow)}, txn, true},
		{"wanted prefix, one literal id", []kadm.DescribedACL{bind(me, txnID, "g-1", lit, kmsg.ACLOperationWrite, allow)}, txn, false},
		{"wrong resource type", []kadm.DescribedACL{bind(me, kmsg.ACLResourceTypeGroup, "orders", lit, kmsg.ACLOperationRead, allow)}, topicRead, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			missing := MissingACLs(tc.bindings, me, []ACL{tc.want})
			require.Equal(t, tc.granted, len(missing) == 0, "%v", missing)
		})
	}
}

// TestACLCommand: the kafka-acls.sh line names the principal, operation,
// resource and pattern in the tool's spelling.
func TestACLCommand(t *testing.T) {
	t.Parallel()
	a := ACL{Resource: kmsg.ACLResourceTypeTransactionalId, Name: "g-", Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: kmsg.ACLOperationDescribeConfigs}
	require.Equal(t, `kafka-acls.sh --bootstrap-server "$BROKERS" --command-config "$ADMIN_CONFIG" --add --allow-principal User:app --operation DescribeConfigs --transactional-id g- --resource-pattern-type prefixed`, a.Command("User:app"))
	c := ACL{Resource: kmsg.ACLResourceTypeCluster, Name: "kafka-cluster", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationIdempotentWrite}
	require.Contains(t, c.Command("User:a b"), `--allow-principal 'User:a b' --operation IdempotentWrite --cluster --resource-pattern-type literal`)
}

// TestRequiredACLsMinimal: no entry of a generated set is implied by
// another (each one is needed), and an unknown role is an error.
func TestRequiredACLsMinimal(t *testing.T) {
	t.Parallel()
	p := Pipeline{Stages: []Stage{{Group: "g", Inputs: []string{"in"}, Outputs: []string{"out", "g-dlq"}, Changelogs: []string{"g-s-changelog"}}}}
	for _, role := range Roles {
		acls, err := RequiredACLs(p, role, ACLOptions{CreateTopics: true, LegacyIdempotentWrite: true})
		require.NoError(t, err)
		require.NotEmpty(t, acls)
		for i, a := range acls {
			for j, b := range acls {
				if i != j && a.Resource == b.Resource && a.Name == b.Name && a.Pattern == b.Pattern {
					require.False(t, implies(b.Operation, a.Operation), "%s: %s implies %s", role, b, a)
				}
			}
		}
	}
	_, err := RequiredACLs(p, "nobody", ACLOptions{})
	require.ErrorContains(t, err, `unknown role "nobody"`)
}
