package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/exactly-stream/exactly/admin"
	"github.com/exactly-stream/exactly/examples/orders"
	"github.com/exactly-stream/exactly/kafkaauth"
	"github.com/exactly-stream/exactly/kafkaauth/kafkaauthtest"
)

// The secured tests run the pipeline, restore and zombie tests, and the
// commands as child processes, through SASL_SSL (SCRAM-SHA-512 over TLS)
// on a cluster with ACLs on. The instances connect as an application user
// that holds only the ACLs grantApp gives it; the test's own clients
// (topic creation, producing orders, verifying) connect as an operator, a
// super user.
//
// With KAFKA_SECURED_BROKERS set (integration/kafka/test.sh sets it from
// the secured.env of `cluster.sh up --security sasl_ssl`), they run on
// that listener, with
//
//	KAFKA_SECURED_CA_FILE         PEM file of the CA of the brokers' certificates
//	KAFKA_SECURED_USER            the application user (SCRAM-SHA-512)
//	KAFKA_SECURED_PASSWORD        its password
//	KAFKA_SECURED_ADMIN_USER      the operator, a super user
//	KAFKA_SECURED_ADMIN_PASSWORD  its password
//
// Otherwise they run on a kfake cluster with SASL, TLS and ACLs on
// (kafkaauthtest.Start, kfake.EnableACLs), so that `make test` covers
// them.

// security is how a secured env connects.
type security struct {
	user    string    // the application user, whose ACLs grantApp sets
	admin   []kgo.Opt // the operator's connection: a super user
	app     []kgo.Opt // the application user's connection
	appEnv  []string  // the application user's connection as EXACTLY_ variables
	opEnv   []string  // the operator's, likewise
	secrets []string  // the passwords, which no output may contain
}

// The application user of the kfake run.
const (
	kfakeAppUser     = "exactly-app"
	kfakeAppPassword = "app-Pa55word-never-printed"
)

// newSecuredEnv is newEnv on a secured cluster: KAFKA_SECURED_BROKERS, or
// a kfake cluster of its own (returned too, for its control API). Besides
// the input and output topics, the operator creates the dead-letter and
// payments topics (so the application user needs no CREATE on them) and
// grants the application user its ACLs.
func newSecuredEnv(t *testing.T) (*env, *kfake.Cluster) {
	t.Helper()
	e := &env{t: t, root: t.TempDir(), parts: partitions}
	var c *kfake.Cluster
	var ca string
	var op, app kafkaauth.SASL
	if bs := os.Getenv("KAFKA_SECURED_BROKERS"); bs != "" {
		e.brokers, e.real = strings.Split(bs, ","), true
		e.prefix = fmt.Sprintf("it-%s-%d-", regexp.MustCompile(`[^a-zA-Z0-9]+`).ReplaceAllString(t.Name(), "-"), rand.IntN(1e6))
		ca = requireEnv(t, "KAFKA_SECURED_CA_FILE")
		app = scram(requireEnv(t, "KAFKA_SECURED_USER"), requireEnv(t, "KAFKA_SECURED_PASSWORD"))
		op = scram(requireEnv(t, "KAFKA_SECURED_ADMIN_USER"), requireEnv(t, "KAFKA_SECURED_ADMIN_PASSWORD"))
	} else {
		kc := kafkaauthtest.Start(t, 3, false, kfake.EnableACLs(), kfake.User(kafkaauth.ScramSHA512, kfakeAppUser, kfakeAppPassword))
		c, e.brokers, ca = kc.Cluster, strings.Split(kc.Brokers, ","), kc.Certs.CAFile
		app = scram(kfakeAppUser, kfakeAppPassword)
		op = scram(kafkaauthtest.Scram512, kafkaauthtest.Password)
	}
	e.sec = &security{
		user: app.Username, admin: kgoOpts(t, ca, op), app: kgoOpts(t, ca, app),
		appEnv: securityEnv(ca, app), opEnv: securityEnv(ca, op),
		secrets: []string{string(app.Password), string(op.Password)},
	}
	e.setup()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, topic := range []string{e.topics.DLQ, e.topics.Payments, e.topics.PaymentsDLQ} {
		resp, err := e.admin.CreateTopic(ctx, e.parts, -1, nil, topic)
		require.NoError(t, err)
		require.NoError(t, resp.Err, "creating %s", topic)
	}
	require.ErrorIs(t, e.appListTopics(ctx), kerr.TopicAuthorizationFailed,
		"before any grant the application user must be denied: are ACLs on?")
	e.grantApp(ctx)
	return e, c
}

func requireEnv(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	require.NotEmpty(t, v, "KAFKA_SECURED_BROKERS is set, so %s must be too", name)
	return v
}

func scram(user, password string) kafkaauth.SASL {
	return kafkaauth.SASL{Mechanism: kafkaauth.ScramSHA512, Username: user, Password: kafkaauth.Secret(password)}
}

// kgoOpts returns the kgo options of user over TLS verified with ca.
func kgoOpts(t *testing.T, ca string, user kafkaauth.SASL) []kgo.Opt {
	t.Helper()
	opts, err := kafkaauth.Config{TLS: kafkaauth.TLS{CAFile: ca}, SASL: user}.Opts()
	require.NoError(t, err)
	return opts
}

// securityEnv returns the environment variables that make the exactly
// binary connect as user over TLS verified with ca.
func securityEnv(ca string, user kafkaauth.SASL) []string {
	return []string{
		"EXACTLY_TLS_CA_FILE=" + ca,
		"EXACTLY_SASL_MECHANISM=" + user.Mechanism,
		"EXACTLY_SASL_USERNAME=" + user.Username,
		"EXACTLY_SASL_PASSWORD=" + string(user.Password),
	}
}

// grantApp gives the application user, as the operator, exactly the ACLs
// admin.RequiredACLs generates for an instance of each service (with
// CREATE, since instances create their missing changelogs), and nothing
// more. Then it waits until the brokers apply them.
func (e *env) grantApp(ctx context.Context) {
	e.t.Helper()
	principal := "User:" + e.sec.user
	ot, err := orders.OrderTopologyFor(e.topics)
	require.NoError(e.t, err)
	pt, err := orders.PaymentTopologyFor(e.topics)
	require.NoError(e.t, err)
	p := admin.Pipeline{Stages: []admin.Stage{
		admin.StageOf(ot, e.group("order"), e.topics.DLQ),
		admin.StageOf(pt, e.group("payment"), e.topics.PaymentsDLQ),
	}}
	acls, err := admin.RequiredACLs(p, admin.RoleInstance, admin.ACLOptions{CreateTopics: true})
	require.NoError(e.t, err)
	for _, a := range acls {
		b := kadm.NewACLs().Allow(principal).ResourcePatternType(a.Pattern).Operations(a.Operation)
		switch a.Resource {
		case kmsg.ACLResourceTypeTopic:
			b = b.Topics(a.Name)
		case kmsg.ACLResourceTypeGroup:
			b = b.Groups(a.Name)
		case kmsg.ACLResourceTypeTransactionalId:
			b = b.TransactionalIDs(a.Name)
		case kmsg.ACLResourceTypeCluster:
			b = b.Clusters()
		default:
			e.t.Fatalf("unexpected resource in the generated ACLs: %s", a)
		}
		results, err := e.admin.CreateACLs(ctx, b)
		require.NoError(e.t, err)
		for _, r := range results {
			require.NoError(e.t, r.Err, "granting %s", a)
		}
	}
	e.waitGranted(ctx)
}

// waitGranted waits until the application user may describe the input
// and output topics: on a real cluster every broker applies the new ACLs
// from the metadata log a moment after the controller wrote them.
func (e *env) waitGranted(ctx context.Context) {
	e.t.Helper()
	var last error
	for {
		if last = e.appListTopics(ctx); last == nil {
			return
		}
		select {
		case <-ctx.Done():
			e.t.Fatalf("the application user's ACLs were not applied: %v", last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// appListTopics describes the input and output topics as the application
// user and returns the first error.
func (e *env) appListTopics(ctx context.Context) error {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(e.brokers...)}, e.sec.app...)...)
	if err != nil {
		return err
	}
	defer cl.Close()
	topics := []string{e.topics.Orders, e.topics.Events, e.topics.DLQ, e.topics.Payments, e.topics.PaymentsDLQ}
	details, err := kadm.NewClient(cl).ListTopics(ctx, topics...)
	if err == nil {
		err = details.Error()
	}
	if err == nil && len(details) != len(topics) {
		err = fmt.Errorf("%d of %d topics listed", len(details), len(topics))
	}
	return err
}

// TestSecured runs the pipeline, restore and zombie tests and the
// commands through SASL_SSL with ACLs (see the top of this file).
func TestSecured(t *testing.T) {
	t.Run("pipeline", func(t *testing.T) {
		t.Parallel()
		e, _ := newSecuredEnv(t)
		twoStagePipeline(t, e)
	})
	t.Run("restore", func(t *testing.T) {
		t.Parallel()
		e, _ := newSecuredEnv(t)
		freshInstanceRestoresAll(t, e)
	})
	// Two of TestZombie's four cases, one fenced by the group generation
	// and one by the transaction timeout; TestZombie runs them all.
	for _, tc := range []zombieCase{zombieCases[0], zombieCases[3]} {
		t.Run("zombie "+tc.name, func(t *testing.T) {
			t.Parallel()
			e, c := newSecuredEnv(t)
			zombie(t, e, c, tc)
		})
	}
	t.Run("commands", func(t *testing.T) {
		t.Parallel()
		e, _ := newSecuredEnv(t)
		securedCommands(t, e)
	})
}

// securedCommands runs the exactly binary's topics create, produce, run,
// verify and doctor with nothing but environment variables for the
// brokers, the topics and the connection: run as the application user,
// the others as the operator. No output holds a password.
func securedCommands(t *testing.T, e *env) {
	cmdEnv := func(user []string) []string {
		return append(append(os.Environ(), "EXACTLY_BROKERS="+strings.Join(e.brokers, ","), "EXACTLY_TOPIC_PREFIX="+e.prefix), user...)
	}
	var outputs []string
	// command runs the binary and returns its standard output, then its
	// standard error, and its exit status.
	command := func(user []string, args ...string) (string, string, int) {
		cmd := exec.Command(binary, args...)
		cmd.Env = cmdEnv(user)
		var stdout, stderr strings.Builder
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			require.NoError(t, err, "exactly %s", strings.Join(args, " "))
		}
		outputs = append(outputs, stdout.String(), stderr.String())
		return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
	}

	out, errOut, code := command(e.sec.opEnv, "topics", "create", "--partitions", fmt.Sprint(e.parts))
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out, "topics: OK")
	out, errOut, code = command(e.sec.opEnv, "produce", "--count", "1500", "--seed", "1700")
	require.Equal(t, 0, code, out+errOut)
	require.Contains(t, out+errOut, "produced 1500 records")

	dir := filepath.Join(e.root, "a")
	run := exec.Command(binary, "run", "--service", "order", "--instance-id", "a", "--state-dir", dir,
		"--commit-interval", "200ms", "--session-timeout", "6s", "--log-level", "info", "--http-addr", "127.0.0.1:0")
	run.Env = cmdEnv(e.sec.appEnv)
	logs := &logBuffer{}
	run.Stdout, run.Stderr = logs, logs
	require.NoError(t, run.Start())
	exited := make(chan struct{})
	e.wg.Go(func() { _ = run.Wait(); close(exited) })
	t.Cleanup(func() {
		_ = run.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("output of exactly run:\n%s", logs.String())
		}
	})

	deadline := time.Now().Add(2 * time.Minute)
	for {
		if out, errOut, code = command(e.sec.opEnv, "verify", "--payments=false", "--stable-wait", "1s"); code == 0 {
			break
		}
		select {
		case <-exited:
			t.Fatalf("exactly run exited: %s\n%s", run.ProcessState, logs.String())
		default:
		}
		require.True(t, time.Now().Before(deadline), "verify never passed:\n%s%s", out, errOut)
		time.Sleep(500 * time.Millisecond)
	}
	require.Contains(t, out, "OK")

	// The doctor, run by the operator on the application user's behalf,
	// finds every generated ACL granted and one thing wrong: the payment
	// stage never ran.
	out, errOut, code = command(e.sec.opEnv, "doctor", "--json", "--acls-principal", "User:"+e.sec.user)
	require.Equal(t, 4, code, "doctor: warnings only\n%s%s", out, errOut)
	var report struct {
		Findings []struct{ Severity, Check, Subject string }
		ACLs     struct{ Note string }
	}
	require.NoError(t, json.Unmarshal([]byte(out), &report), out)
	var granted, required int
	_, err := fmt.Sscanf(report.ACLs.Note, "%d of %d required ACLs granted", &granted, &required)
	require.NoError(t, err, "acls note: %q", report.ACLs.Note)
	require.Positive(t, required, out)
	require.Equal(t, required, granted, out)
	require.Len(t, report.Findings, 1, out)
	require.Equal(t, e.group("payment"), report.Findings[0].Subject, out)

	require.NoError(t, run.Process.Signal(os.Interrupt))
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatal("exactly run did not stop")
	}
	require.Equal(t, 0, run.ProcessState.ExitCode(), logs.String())
	for _, s := range e.sec.secrets {
		for _, o := range append(outputs, logs.String()) {
			require.NotContains(t, o, s, "a password was printed")
		}
	}
	e.finalCheck(false, dir)
}
