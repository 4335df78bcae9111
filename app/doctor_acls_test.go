package app

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/examples/wordcount"
)

// TestPrintACLs: doctor --print-acls connects to nothing and prints, for
// every role, the generated set as a table and as one kafka-acls.sh line
// per entry, for the SASL user (never the password), or for
// --acls-principal.
func TestPrintACLs(t *testing.T) {
	t.Parallel()
	const password = "never-printed-Pa55"
	out, stderr, err := runApp(testConfig(), "doctor", "--print-acls", "--sasl-mechanism", "SCRAM-SHA-512",
		"--sasl-username", "wc-app", "--sasl-password", password)
	require.NoError(t, err, stderr)
	require.NotContains(t, out+stderr, password)
	top, err := wordcount.Topology("")
	require.NoError(t, err)
	p := admin.Pipeline{Stages: []admin.Stage{admin.StageOf(top, wordcount.Group, wordcount.Group+"-dlq")}}
	for _, role := range admin.Roles {
		acls, err := admin.RequiredACLs(p, role, admin.ACLOptions{})
		require.NoError(t, err)
		require.Contains(t, out, "# role "+string(role)+": ")
		for _, a := range acls {
			require.Contains(t, out, a.Command("User:wc-app")+"\n")
		}
	}
	require.Equal(t, strings.Count(out, "kafka-acls.sh "), countACLs(t, p))
	require.Contains(t, out, "--operation Write --transactional-id "+wordcount.Group+"- --resource-pattern-type prefixed")

	out, _, err = runApp(testConfig(), "doctor", "--print-acls", "--acls-principal", "User:other")
	require.NoError(t, err)
	require.Contains(t, out, "--allow-principal User:other ")
	out, _, err = runApp(testConfig(), "doctor", "--print-acls")
	require.NoError(t, err)
	require.Contains(t, out, "# principal unknown")
}

func countACLs(t *testing.T, p admin.Pipeline) int {
	n := 0
	for _, role := range admin.Roles {
		acls, err := admin.RequiredACLs(p, role, admin.ACLOptions{})
		require.NoError(t, err)
		n += len(acls)
	}
	return n
}

// TestDoctorACLsCheckSkips: on a cluster without ACLs the acls check says
// why it did not compare anything, and adds no finding; without a SASL
// user it says the principal is unknown.
func TestDoctorACLsCheckSkips(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	brokers := strings.Join(cluster.ListenAddrs(), ",")
	out, _, _ := runApp(testConfig(), "doctor", "--brokers", brokers, "--timeout", "20s")
	require.Contains(t, out, "ACLS: not checked: the principal is not known")
	out, _, _ = runApp(testConfig(), "doctor", "--brokers", brokers, "--timeout", "20s", "--acls-principal", "User:x")
	require.Contains(t, out, "ACLS: no ACLs on the cluster (no authorizer, or every client is a superuser), skipped")
	require.NotContains(t, out, " acls ")
}

// TestDoctorACLsServiceFlag: --acls-service exists only with several
// services, must name one, and narrows the instance sets --print-acls
// prints.
func TestDoctorACLsServiceFlag(t *testing.T) {
	t.Parallel()
	c := Config{Name: "two", Services: []Service{
		{Name: "a", Topology: wordcount.Topology, Group: "group-a"},
		{Name: "b", Topology: wordcount.Topology},
	}}
	_, _, err := runApp(c, "doctor", "--brokers", "127.0.0.1:1", "--acls-service", "c")
	require.ErrorContains(t, err, `--acls-service: want a or b, got "c"`)
	require.Equal(t, ExitUsage, ExitCode(err))
	out, _, err := runApp(c, "doctor", "--print-acls", "--acls-service", "b")
	require.NoError(t, err)
	require.Contains(t, out, "--operation Read --group b --resource-pattern-type literal", "b's group")
	require.NotContains(t, out, "--operation Read --group group-a ", "a's group: not an instance of b")
	require.Contains(t, out, "--operation Describe --group group-a ", "the doctor role covers every service")
	_, _, err = runApp(testConfig(), "doctor", "--acls-service", "wc")
	require.ErrorContains(t, err, "--acls-service")
	require.Equal(t, ExitUsage, ExitCode(err))
}
