package app

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
)

// TestDoctorNamesTheProgramsCreateCommand: the doctor's advice for a
// missing topic named `exactly topics create`, the reference binary,
// whatever program ran it. A kit program's doctor names its own command.
func TestDoctorNamesTheProgramsCreateCommand(t *testing.T) {
	t.Parallel()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	defer cluster.Close()
	out, _, err := runApp(testConfig(), "doctor", "--brokers", strings.Join(cluster.ListenAddrs(), ","), "--timeout", "20s")
	require.Equal(t, ExitWarning, ExitCode(err), "%v\n%s", err, out)
	require.Contains(t, out, "lines                      missing: create it with `wc topics create`")
	require.NotContains(t, out, "exactly")
}
