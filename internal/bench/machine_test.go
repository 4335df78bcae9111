package bench

import (
	"bufio"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestProcFields(t *testing.T) {
	t.Parallel()
	status := "Name:\texactly\nVmPeak:\t  204800 kB\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\n"
	v, err := scanField(bufio.NewScanner(strings.NewReader(status)), "VmHWM")
	require.NoError(t, err)
	kb, err := parseKB(v)
	require.NoError(t, err)
	require.Equal(t, int64(51200), kb)

	_, err = scanField(bufio.NewScanner(strings.NewReader(status)), "VmSwap")
	require.Error(t, err)
	_, err = parseKB("12 MB")
	require.Error(t, err)
}

func TestPeakRSSOfThisProcess(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/status"); err != nil {
		t.Skip("no /proc")
	}
	b, err := peakRSS(os.Getpid())
	require.NoError(t, err)
	require.Greater(t, b, int64(1<<20), "a Go test binary holds more than 1 MiB")
	m := machineInfo()
	require.Positive(t, m.CPUs)
	require.Positive(t, m.MemoryMiB)
}
