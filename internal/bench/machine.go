package bench

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// machineInfo describes this machine from /proc (Linux); fields it cannot
// read stay zero.
func machineInfo() Machine {
	m := Machine{
		CPUs:       runtime.NumCPU(),
		GOMAXPROCS: runtime.GOMAXPROCS(0),
		GoVersion:  runtime.Version(),
		LoadBefore: loadAverage(),
		Started:    time.Now(),
	}
	m.CPUModel, _ = procField("/proc/cpuinfo", "model name")
	if kb, err := procKB("/proc/meminfo", "MemTotal"); err == nil {
		m.MemoryMiB = kb >> 10
	}
	return m
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() [3]float64 {
	var out [3]float64
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return out
	}
	for i, f := range strings.Fields(string(b)) {
		if i == 3 {
			break
		}
		out[i], _ = strconv.ParseFloat(f, 64)
	}
	return out
}

// procField returns the value of the first "name: value" line of a /proc
// file.
func procField(path, name string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	return scanField(bufio.NewScanner(f), name)
}

func scanField(sc *bufio.Scanner, name string) (string, error) {
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == name {
			return strings.TrimSpace(v), nil
		}
	}
	if err := sc.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("no field %q", name)
}

// procKB reads a "name:   1234 kB" field, as in /proc/meminfo and
// /proc/<pid>/status.
func procKB(path, name string) (int64, error) {
	v, err := procField(path, name)
	if err != nil {
		return 0, err
	}
	return parseKB(v)
}

func parseKB(v string) (int64, error) {
	num, unit, _ := strings.Cut(strings.TrimSpace(v), " ")
	if strings.TrimSpace(unit) != "kB" {
		return 0, fmt.Errorf("value %q is not in kB", v)
	}
	return strconv.ParseInt(num, 10, 64)
}

// peakRSS returns the VmHWM (peak resident set) of process pid in bytes.
func peakRSS(pid int) (int64, error) {
	kb, err := procKB(fmt.Sprintf("/proc/%d/status", pid), "VmHWM")
	if err != nil {
		return 0, fmt.Errorf("reading VmHWM of process %d: %w", pid, err)
	}
	return kb << 10, nil
}
