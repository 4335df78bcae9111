// Package cluster lets integration tests take brokers of the local Apache
// Kafka test cluster down and bring them back mid-run.
//
// The cluster itself is started by integration/kafka/cluster.sh, which keeps
// its state (properties, data, logs, pid files and the bootstrap list) in a
// run directory; this package reads that directory. Stop and Kill signal the
// node processes directly, Start goes through `cluster.sh start-node` so the
// node is launched exactly as `cluster.sh up` launched it, and readiness is
// checked over the Kafka protocol with franz-go.
package cluster

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// DirEnv names the environment variable that overrides the run directory,
// the same one cluster.sh reads.
const DirEnv = "EXACTLY_KAFKA_DIR"

// DefaultDir is the run directory cluster.sh uses when DirEnv is unset.
const DefaultDir = "/tmp/exactly-kafka-cluster"

// ErrNoCluster is returned (wrapped) by FromEnv and Open when the run
// directory holds no cluster started by cluster.sh.
var ErrNoCluster = errors.New("no kafka test cluster")

// pollInterval is how often Stop, Kill and the readiness checks look again.
const pollInterval = 200 * time.Millisecond

// Cluster is a handle on a running cluster.sh cluster. Its methods are safe
// for concurrent use; they keep no state beyond what Open read.
type Cluster struct {
	dir     string
	script  string
	brokers []string
	nodes   []int
}

// FromEnv opens the cluster in the run directory named by EXACTLY_KAFKA_DIR,
// or in DefaultDir when that is unset. It returns an error wrapping
// ErrNoCluster when no cluster.sh state is there.
func FromEnv() (*Cluster, error) {
	dir := os.Getenv(DirEnv)
	if dir == "" {
		dir = DefaultDir
	}
	return Open(dir)
}

// Open reads the cluster.sh state in dir: the bootstrap list, the node count
// and the path of the script that made it. It returns an error wrapping
// ErrNoCluster when dir holds no cluster that finished starting.
func Open(dir string) (*Cluster, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("resolving run directory %q: %w", dir, err)
	}
	env, err := readEnvFile(filepath.Join(dir, "cluster.env"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("opening cluster in %s: %w", dir, ErrNoCluster)
		}
		return nil, fmt.Errorf("opening cluster in %s: %w", dir, err)
	}
	raw, err := os.ReadFile(filepath.Join(dir, "brokers"))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			// cluster.sh writes brokers last, once every node answered.
			return nil, fmt.Errorf("opening cluster in %s: cluster never finished starting: %w", dir, ErrNoCluster)
		}
		return nil, fmt.Errorf("reading brokers file: %w", err)
	}
	brokers := strings.Split(strings.TrimSpace(string(raw)), ",")
	n, err := strconv.Atoi(env["nodes"])
	if err != nil || n < 1 {
		return nil, fmt.Errorf("parsing node count %q in %s: %w", env["nodes"], filepath.Join(dir, "cluster.env"), ErrNoCluster)
	}
	if len(brokers) != n {
		return nil, fmt.Errorf("opening cluster in %s: %d nodes but %d brokers listed", dir, n, len(brokers))
	}
	script := env["script"]
	if script == "" {
		return nil, fmt.Errorf("opening cluster in %s: cluster.env names no script", dir)
	}
	nodes := make([]int, n)
	for i := range nodes {
		nodes[i] = i + 1
	}
	return &Cluster{dir: dir, script: script, brokers: brokers, nodes: nodes}, nil
}

// readEnvFile parses the key=value lines cluster.sh writes to cluster.env,
// undoing the shell quoting of bash's printf %q.
func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	env := make(map[string]string)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if !ok {
			continue
		}
		if env[k], err = unquoteShell(v); err != nil {
			return nil, fmt.Errorf("reading %s: %w", path, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return env, nil
}

// unquoteShell undoes bash's printf %q for the values cluster.sh writes:
// a pair of single quotes for the empty string, backslash escapes otherwise.
// The dollar-quoted form, which bash uses only for control characters, is
// not supported.
func unquoteShell(v string) (string, error) {
	if v == "''" {
		return "", nil
	}
	if strings.HasPrefix(v, "$'") {
		return "", fmt.Errorf("unquoting %q: $'...' quoting is not supported", v)
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) {
			i++
		}
		b.WriteByte(v[i])
	}
	return b.String(), nil
}

// Dir returns the run directory the cluster's state lives in.
func (c *Cluster) Dir() string { return c.dir }

// Brokers returns the bootstrap list, one host:port per node in node order.
func (c *Cluster) Brokers() []string { return append([]string(nil), c.brokers...) }

// Nodes returns the node IDs, 1 to the node count.
func (c *Cluster) Nodes() []int { return append([]int(nil), c.nodes...) }

// Addr returns the client address (host:port) of node.
func (c *Cluster) Addr(node int) (string, error) {
	if err := c.checkNode(node); err != nil {
		return "", err
	}
	return c.brokers[node-1], nil
}

// checkNode returns an error unless node is one of the cluster's node IDs.
func (c *Cluster) checkNode(node int) error {
	if node < 1 || node > len(c.nodes) {
		return fmt.Errorf("checking node %d: cluster has nodes 1 to %d", node, len(c.nodes))
	}
	return nil
}

// Running reports whether node's process is alive.
func (c *Cluster) Running(node int) (bool, error) {
	if err := c.checkNode(node); err != nil {
		return false, err
	}
	pid, err := c.pid(node)
	if err != nil {
		return false, fmt.Errorf("checking node %d: %w", node, err)
	}
	return pid != 0, nil
}

// pid returns the pid of node's JVM, or 0 when it is not running. A pid from
// the pid file only counts when that process is still this node's
// kafka.Kafka, so a recycled pid is never signalled.
func (c *Cluster) pid(node int) (int, error) {
	raw, err := os.ReadFile(filepath.Join(c.dir, fmt.Sprintf("n%d.pid", node)))
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("reading pid file: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil || pid <= 0 {
		return 0, fmt.Errorf("parsing pid file %q: invalid pid", raw)
	}
	if !c.isNodeProcess(node, pid) {
		return 0, nil
	}
	return pid, nil
}

// isNodeProcess checks pid's command line (Linux /proc; elsewhere it falls
// back to whether the pid exists at all). A zombie has an empty command line
// and so counts as exited.
func (c *Cluster) isNodeProcess(node, pid int) bool {
	cmdline, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	if err != nil {
		if _, statErr := os.Stat("/proc/self/cmdline"); statErr == nil {
			return false // /proc works, so the process is gone
		}
		return syscall.Kill(pid, 0) == nil
	}
	want := "kafka.Kafka\x00" + filepath.Join(c.dir, fmt.Sprintf("n%d.properties", node))
	return bytes.Contains(cmdline, []byte(want))
}

// Stop shuts node down cleanly (SIGTERM, a controlled shutdown: it hands its
// partition leadership over first) and waits until the process has exited or
// ctx is done. Stopping a node that is not running is not an error.
func (c *Cluster) Stop(ctx context.Context, node int) error {
	if err := c.signal(node, syscall.SIGTERM); err != nil {
		return fmt.Errorf("stopping node %d: %w", node, err)
	}
	if err := c.waitExit(ctx, node); err != nil {
		return fmt.Errorf("stopping node %d: %w", node, err)
	}
	return nil
}

// Kill crashes node (SIGKILL: no controlled shutdown, no flush) and waits up
// to 10 seconds for the process to be gone. Killing a node that is not
// running is not an error.
func (c *Cluster) Kill(node int) error {
	if err := c.signal(node, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing node %d: %w", node, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.waitExit(ctx, node); err != nil {
		return fmt.Errorf("killing node %d: %w", node, err)
	}
	return nil
}

// signal sends sig to node's process; a node that is not running is left
// alone without error.
func (c *Cluster) signal(node int, sig syscall.Signal) error {
	if err := c.checkNode(node); err != nil {
		return err
	}
	pid, err := c.pid(node)
	if err != nil || pid == 0 {
		return err
	}
	if err := syscall.Kill(pid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("sending %v to pid %d: %w", sig, pid, err)
	}
	return nil
}

// waitExit polls until node's process has exited or ctx is done.
func (c *Cluster) waitExit(ctx context.Context, node int) error {
	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		pid, err := c.pid(node)
		if err != nil {
			return err
		}
		if pid == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for pid %d to exit: %w", pid, context.Cause(ctx))
		case <-t.C:
		}
	}
}

// Start starts node again on its existing data directory with
// `cluster.sh start-node`, which waits until the node has rejoined the
// cluster, and then waits until the node answers Kafka requests. Starting a
// running node is not an error.
func (c *Cluster) Start(ctx context.Context, node int) error {
	if err := c.checkNode(node); err != nil {
		return fmt.Errorf("starting node %d: %w", node, err)
	}
	cmd := exec.CommandContext(ctx, "bash", c.script, "start-node", strconv.Itoa(node))
	cmd.Env = append(os.Environ(), DirEnv+"="+c.dir)
	// The node is detached from the script's output; this only guards
	// against a stray child holding the pipe open.
	cmd.WaitDelay = 5 * time.Second
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("starting node %d: %w\n%s", node, err, bytes.TrimSpace(out))
	}
	if err := c.waitNodes(ctx, []int{node}); err != nil {
		return fmt.Errorf("starting node %d: %w", node, err)
	}
	return nil
}

// WaitReady waits until every node is registered in the cluster metadata
// and answers an ApiVersions request of its own, or until ctx is done.
func (c *Cluster) WaitReady(ctx context.Context) error {
	if err := c.waitNodes(ctx, c.nodes); err != nil {
		return fmt.Errorf("waiting for cluster: %w", err)
	}
	return nil
}

// waitNodes polls until each of nodes is in the metadata and answers.
func (c *Cluster) waitNodes(ctx context.Context, nodes []int) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.brokers...))
	if err != nil {
		return fmt.Errorf("creating kafka client: %w", err)
	}
	defer cl.Close()

	t := time.NewTicker(pollInterval)
	defer t.Stop()
	for {
		err := checkNodes(ctx, cl, nodes)
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for nodes %v: %w (last error: %w)", nodes, context.Cause(ctx), err)
		case <-t.C:
		}
	}
}

// checkNodes makes one attempt: a metadata request to any broker, then an
// ApiVersions request to each wanted node. KRaft lists only unfenced brokers
// in metadata, so a node that is up but has not yet caught up with the
// controller does not pass.
//
// The requests are issued with kmsg rather than kadm on purpose: kadm's
// BrokerMetadata, ListBrokers and ApiVersions (kadm v1.19, kgo v1.22) answer
// from the client's cached broker list once it has one. That list is only
// refreshed by kgo's own metadata updates (on errors, or every
// MetadataMaxAge, 5 minutes by default), so a client polling kadm can miss a
// broker that rejoined after its first fetch for minutes. A raw
// MetadataRequest always goes to a broker (and refreshes that cache).
func checkNodes(ctx context.Context, cl *kgo.Client, nodes []int) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{} // brokers only, no topics
	meta, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("requesting metadata: %w", err)
	}
	listed := make(map[int32]bool, len(meta.Brokers))
	for _, b := range meta.Brokers {
		listed[b.NodeID] = true
	}
	for _, n := range nodes {
		if !listed[int32(n)] {
			return fmt.Errorf("checking node %d: not in cluster metadata", n)
		}
		// Brokers reject ApiVersions v3+ without a client software name.
		av := kmsg.NewPtrApiVersionsRequest()
		av.ClientSoftwareName = "exactly-integration-cluster"
		av.ClientSoftwareVersion = "0"
		v, err := av.RequestWith(ctx, cl.Broker(n))
		if err == nil {
			err = kerr.ErrorForCode(v.ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("checking node %d: requesting api versions: %w", n, err)
		}
	}
	return nil
}
