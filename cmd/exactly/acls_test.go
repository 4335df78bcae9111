package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// aclUser is the least-privileged instance user of the ACL tests;
// aclOps, aclDoctor and aclReset hold the operator roles' sets; aclAdmin,
// a superuser of kafkaauthtest, produces and verifies.
const (
	aclUser   = "order-app"
	aclOps    = "ops"
	aclDoctor = "doctor"
	aclReset  = "order-reset"
	aclAdmin  = kafkaauthtest.Scram512
)

// programPipeline is the exactly program's pipeline: both services.
func programPipeline(t *testing.T) admin.Pipeline {
	t.Helper()
	ot, err := orderTopology("")
	require.NoError(t, err)
	pt, err := paymentTopology("")
	require.NoError(t, err)
	return admin.Pipeline{Stages: []admin.Stage{
		admin.StageOf(ot, orders.DefaultOrderGroup, orders.TopicDLQ),
		admin.StageOf(pt, orders.DefaultPaymentGroup, orders.TopicPaymentsDLQ),
	}}
}

// roleACLs is RequiredACLs for role.
func roleACLs(t *testing.T, p admin.Pipeline, role admin.Role) []admin.ACL {
	t.Helper()
	acls, err := admin.RequiredACLs(p, role, admin.ACLOptions{})
	require.NoError(t, err)
	return acls
}

// orderInstanceACLs is what `exactly doctor --print-acls` lists for an
// instance of the order service: generated from its topology.
func orderInstanceACLs(t *testing.T) []admin.ACL {
	t.Helper()
	top, err := orderTopology("")
	require.NoError(t, err)
	stage := admin.StageOf(top, orders.DefaultOrderGroup, orders.TopicDLQ)
	acls := admin.InstanceACLs(stage, admin.ACLOptions{})
	require.NotEmpty(t, acls)
	return acls
}

// aclCluster starts a SASL+TLS kfake cluster with ACLs on, where aclUser
// has exactly grants, and each user of others exactly its own.
func aclCluster(t *testing.T, grants []admin.ACL, others map[string][]admin.ACL) *kafkaauthtest.Cluster {
	t.Helper()
	opts := []kfake.Opt{kfake.EnableACLs(), kfake.User("SCRAM-SHA-512", aclUser, kafkaauthtest.Password, seedACLs(grants)...)}
	for user, acls := range others {
		opts = append(opts, kfake.User("SCRAM-SHA-512", user, kafkaauthtest.Password, seedACLs(acls)...))
	}
	return kafkaauthtest.Start(t, 1, false, opts...)
}

func seedACLs(acls []admin.ACL) []kfake.ACL {
	out := make([]kfake.ACL, len(acls))
	for i, a := range acls {
		out[i] = kfake.ACL{Resource: a.Resource, Name: a.Name, Pattern: a.Pattern, Operation: a.Operation, Allow: true}
	}
	return out
}

// secured returns the connection flags of user on c. The password is a
// flag here so that the subtests can run in parallel (no environment).
func secured(c *kafkaauthtest.Cluster, user string) []string {
	return []string{"--brokers", c.Brokers, "--tls-ca-file", c.Certs.CAFile, "--sasl-mechanism", "SCRAM-SHA-512",
		"--sasl-username", user, "--sasl-password", kafkaauthtest.Password}
}

// provision creates the topics as creator and produces orders as the
// superuser.
func provision(t *testing.T, c *kafkaauthtest.Cluster, creator string, count int) {
	t.Helper()
	out, err := runCLI(append([]string{"topics", "create", "--partitions", "2"}, secured(c, creator)...)...)
	require.NoError(t, err, out)
	out, err = runCLI(append([]string{"produce", "--count", fmt.Sprint(count), "--customers", "10", "--seed", "3"}, secured(c, aclAdmin)...)...)
	require.NoError(t, err, out)
}

// runInstance runs an order-service instance as aclUser until ctx ends
// or it fails, and returns its error and logs.
func runInstance(ctx context.Context, t *testing.T, c *kafkaauthtest.Cluster, id string) (chan error, *syncBuffer) {
	return runAs(ctx, t, c, aclUser, "run", id)
}

// runAs runs command (run or reset) of an order-service instance as user.
func runAs(ctx context.Context, t *testing.T, c *kafkaauthtest.Cluster, user, command, id string) (chan error, *syncBuffer) {
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { // ends with ctx, or on its own error
		done <- config().Run(ctx, append([]string{command, "--service", "order", "--state-dir", t.TempDir(), "--instance-id", id,
			"--connect-timeout", "10s"}, secured(c, user)...), &logs, &logs)
	}()
	return done, &logs
}

// TestACLsAreEnough: every role works with exactly its generated set and
// nothing else (not even DESCRIBE on the cluster where the role does not
// list it): an operator creates the topics (topics role); an
// order-service instance processes the orders exactly once (verify's
// checks, E1-E5); the doctor (doctor role) reports on the pipeline
// without an authorization failure and finds every instance ACL granted;
// a reset (reset role) rebuilds the state.
func TestACLsAreEnough(t *testing.T) {
	t.Parallel()
	acls := orderInstanceACLs(t)
	p := programPipeline(t)
	order := admin.Pipeline{Stages: p.Stages[:1]}
	c := aclCluster(t, acls, map[string][]admin.ACL{
		aclOps: roleACLs(t, p, admin.RoleTopics), aclDoctor: roleACLs(t, p, admin.RoleDoctor), aclReset: roleACLs(t, order, admin.RoleReset),
	})
	provision(t, c, aclOps, 200)
	out, err := runCLI(append([]string{"topics", "check", "--partitions", "2"}, secured(c, aclOps)...)...)
	require.NoError(t, err, out)
	require.NotContains(t, out, "not checked", "the topics role lacks something")

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, logs := runInstance(ctx, t, c, "acl-1")
	require.Eventually(t, func() bool {
		out, err = runCLI(append([]string{"verify", "--payments=false", "--stable-wait", "1s"}, secured(c, aclAdmin)...)...)
		return err == nil
	}, 60*time.Second, 200*time.Millisecond, "verify never passed: %v\n%s\nlogs:\n%s", err, out, logs.String())
	require.Contains(t, out, "OK")
	cancel()
	require.NoError(t, <-done, logs.String())

	out, _ = runCLI(append([]string{"doctor", "--json", "--acls-principal", "User:" + aclUser, "--acls-service", "order"}, secured(c, aclDoctor)...)...)
	var r admin.Report
	require.NoError(t, json.Unmarshal([]byte(out), &r), out)
	require.NotContains(t, out, "AUTHORIZATION_FAILED")
	require.NotNil(t, r.ACLs, out)
	require.True(t, r.ACLs.Checked, out)
	require.Empty(t, r.ACLs.Missing, out)
	require.Equal(t, fmt.Sprintf("%d of %d required ACLs granted to User:%s", len(acls), len(acls), aclUser), r.ACLs.Note)
	for _, f := range r.Findings {
		require.NotEqual(t, admin.CheckACLs, f.Check, "%v", f)
	}
	require.NotEmpty(t, r.Groups[0].Lag, "the doctor could not read the group's offsets: %s", out)

	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	done, logs = runAs(ctx, t, c, aclReset, "reset", "acl-1")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "state reset: offset records written") },
		30*time.Second, 50*time.Millisecond, "reset never wrote its offset records:\n%s", logs.String())
	cancel()
	require.NoError(t, <-done, logs.String())
}

// TestACLsEachNeeded: for every entry of the generated set, a cluster
// where the user holds all the others: the doctor names exactly that
// entry as missing (resource type, name, pattern and operation), and an
// instance run as the user fails, or (without READ on a changelog, which
// a first start on empty changelogs does not use) a second instance
// cannot restore that store.
func TestACLsEachNeeded(t *testing.T) {
	t.Parallel()
	acls := orderInstanceACLs(t)
	for i, missing := range acls {
		t.Run(missing.String(), func(t *testing.T) {
			t.Parallel()
			c := aclCluster(t, append(append([]admin.ACL{}, acls[:i]...), acls[i+1:]...), nil)
			provision(t, c, aclAdmin, 20)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			done, logs := runInstance(ctx, t, c, "acl-1")
			err := <-done
			if err != nil {
				require.Contains(t, err.Error(), missing.Resource.String()+"_AUTHORIZATION_FAILED", "run without %s", missing)
			} else {
				// Only READ on a changelog is not needed on a first start:
				// the changelogs are empty. An instance that must restore
				// them (a new state directory) cannot.
				require.Equal(t, kmsg.ACLOperationRead, missing.Operation, "the instance ran without %s:\n%s", missing, logs.String())
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				defer cancel()
				done, logs = runInstance(ctx, t, c, "acl-2")
				err := <-done
				require.Error(t, err, "a new instance restored without %s:\n%s", missing, logs.String())
				require.Contains(t, err.Error(), "reading changelog "+missing.Name+" partition", "run without %s", missing)
				require.Contains(t, err.Error(), "TOPIC_AUTHORIZATION_FAILED", "run without %s", missing)
			}
			out, err := runCLI(append([]string{"doctor", "--acls-principal", "User:" + aclUser, "--acls-service", "order"}, secured(c, aclAdmin)...)...)
			require.Error(t, err, out)
			var found []string
			for line := range strings.Lines(out) {
				if strings.HasPrefix(line, "critical  acls") {
					found = append(found, line)
				}
			}
			require.Len(t, found, 1, out)
			require.Contains(t, found[0], "User:"+aclUser+" lacks ALLOW "+missing.String(), out)
			require.Contains(t, out, fmt.Sprintf("ACLS: %d of %d required ACLs granted", len(acls)-1, len(acls)))
		})
	}
}
