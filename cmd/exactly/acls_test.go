package main

import (
	"context"
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

// aclUser is the least-privileged user of the ACL tests; aclAdmin, a
// superuser of kafkaauthtest, provisions, produces and verifies.
const (
	aclUser  = "order-app"
	aclAdmin = kafkaauthtest.Scram512
)

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
// has exactly grants.
func aclCluster(t *testing.T, grants []admin.ACL) *kafkaauthtest.Cluster {
	t.Helper()
	seed := make([]kfake.ACL, len(grants))
	for i, a := range grants {
		seed[i] = kfake.ACL{Resource: a.Resource, Name: a.Name, Pattern: a.Pattern, Operation: a.Operation, Allow: true}
	}
	return kafkaauthtest.Start(t, 1, false, kfake.EnableACLs(), kfake.User("SCRAM-SHA-512", aclUser, kafkaauthtest.Password, seed...))
}

// secured returns the connection flags of user on c. The password is a
// flag here so that the subtests can run in parallel (no environment).
func secured(c *kafkaauthtest.Cluster, user string) []string {
	return []string{"--brokers", c.Brokers, "--tls-ca-file", c.Certs.CAFile, "--sasl-mechanism", "SCRAM-SHA-512",
		"--sasl-username", user, "--sasl-password", kafkaauthtest.Password}
}

// provision creates the topics and produces orders as the superuser.
func provision(t *testing.T, c *kafkaauthtest.Cluster, count int) {
	t.Helper()
	out, err := runCLI(append([]string{"topics", "create", "--partitions", "2"}, secured(c, aclAdmin)...)...)
	require.NoError(t, err, out)
	out, err = runCLI(append([]string{"produce", "--count", fmt.Sprint(count), "--customers", "10", "--seed", "3"}, secured(c, aclAdmin)...)...)
	require.NoError(t, err, out)
}

// runInstance runs an order-service instance as aclUser until ctx ends
// or it fails, and returns its error and logs.
func runInstance(ctx context.Context, t *testing.T, c *kafkaauthtest.Cluster, id string) (chan error, *syncBuffer) {
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { // ends with ctx, or on its own error
		done <- config().Run(ctx, append([]string{"run", "--service", "order", "--state-dir", t.TempDir(), "--instance-id", id,
			"--connect-timeout", "10s"}, secured(c, aclUser)...), &logs, &logs)
	}()
	return done, &logs
}

// TestACLsAreEnough: an order-service instance whose user holds exactly
// the generated instance ACLs (nothing else: not even DESCRIBE on the
// cluster) processes the orders exactly once (verify's checks, E1-E5),
// and the doctor, run by a superuser for that user, finds nothing
// missing.
func TestACLsAreEnough(t *testing.T) {
	t.Parallel()
	acls := orderInstanceACLs(t)
	c := aclCluster(t, acls)
	provision(t, c, 200)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done, logs := runInstance(ctx, t, c, "acl-1")
	var out string
	var err error
	require.Eventually(t, func() bool {
		out, err = runCLI(append([]string{"verify", "--payments=false", "--stable-wait", "1s"}, secured(c, aclAdmin)...)...)
		return err == nil
	}, 60*time.Second, 200*time.Millisecond, "verify never passed: %v\n%s\nlogs:\n%s", err, out, logs.String())
	require.Contains(t, out, "OK")
	cancel()
	require.NoError(t, <-done, logs.String())

	out, err = runCLI(append([]string{"doctor", "--order-group", orders.DefaultOrderGroup, "--acls-principal", "User:" + aclUser, "--acls-service", "order"}, secured(c, aclAdmin)...)...)
	require.NotContains(t, out, " acls ", "err %v", err)
	require.Contains(t, out, fmt.Sprintf("ACLS: %d of %d required ACLs granted to User:%s", len(acls), len(acls), aclUser))
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
			c := aclCluster(t, append(append([]admin.ACL{}, acls[:i]...), acls[i+1:]...))
			provision(t, c, 20)
			ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
			defer cancel()
			done, logs := runInstance(ctx, t, c, "acl-1")
			if err := <-done; err == nil {
				// Only READ on a changelog is not needed on a first start:
				// the changelogs are empty. An instance that must restore
				// them (a new state directory) cannot.
				require.Equal(t, kmsg.ACLOperationRead, missing.Operation, "the instance ran without %s:\n%s", missing, logs.String())
				store := strings.TrimSuffix(strings.TrimPrefix(missing.Name, orders.DefaultOrderGroup+"-"), "-changelog")
				ctx, cancel := context.WithTimeout(context.Background(), 8*time.Second)
				defer cancel()
				done, logs = runInstance(ctx, t, c, "acl-2")
				if err := <-done; err == nil {
					require.NotContains(t, logs.String(), `msg="restored store partition" store=`+store+" ", "restored without %s", missing)
				}
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
