package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

// The example deployment (deploy/kubernetes and the Dockerfile) against the
// program it deploys. make validate-deploy checks the manifests against the
// Kubernetes API schemas; this checks what no schema knows: that every
// EXACTLY_* variable is a flag of `exactly run`, that ports, paths and the
// state directory agree between the image, the pod and the program, and
// that the grace period outlasts a transaction.

const deployDir = "../../deploy/kubernetes"

// httpShutdown is how long `exactly run` gives in-flight HTTP queries on
// SIGTERM (app/serve.go).
const httpShutdown = 5 * time.Second

// Kubernetes objects, as far as the test reads them.
type (
	k8sObject struct {
		Kind     string            `yaml:"kind"`
		Metadata k8sMeta           `yaml:"metadata"`
		Data     map[string]string `yaml:"data"`
		Strings  map[string]string `yaml:"stringData"`
		Spec     k8sSpec           `yaml:"spec"`
	}
	k8sMeta struct {
		Name   string            `yaml:"name"`
		Labels map[string]string `yaml:"labels"`
	}
	k8sSpec struct {
		// StatefulSet
		ServiceName    string      `yaml:"serviceName"`
		Selector       k8sSelector `yaml:"selector"`
		Template       k8sTemplate `yaml:"template"`
		VolumeClaims   []k8sObject `yaml:"volumeClaimTemplates"`
		MaxUnavailable *int        `yaml:"maxUnavailable"` // PodDisruptionBudget
		// Service
		ClusterIP       string            `yaml:"clusterIP"`
		PublishNotReady bool              `yaml:"publishNotReadyAddresses"`
		ServiceSelector map[string]string `yaml:"-"`
		Ports           []k8sPort         `yaml:"ports"`
	}
	k8sSelector struct {
		MatchLabels map[string]string `yaml:"matchLabels"`
	}
	k8sTemplate struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     k8sPod  `yaml:"spec"`
	}
	k8sPod struct {
		GracePeriod *int           `yaml:"terminationGracePeriodSeconds"`
		Containers  []k8sContainer `yaml:"containers"`
		Volumes     []k8sVolume    `yaml:"volumes"`
	}
	k8sContainer struct {
		Args    []string `yaml:"args"`
		Env     []k8sEnv `yaml:"env"`
		EnvFrom []struct {
			ConfigMapRef struct {
				Name string `yaml:"name"`
			} `yaml:"configMapRef"`
		} `yaml:"envFrom"`
		Ports     []k8sPort  `yaml:"ports"`
		Readiness k8sProbe   `yaml:"readinessProbe"`
		Liveness  k8sProbe   `yaml:"livenessProbe"`
		Mounts    []k8sMount `yaml:"volumeMounts"`
	}
	k8sEnv struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom struct {
			FieldRef struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	k8sPort struct {
		Name          string `yaml:"name"`
		Port          int    `yaml:"port"`
		ContainerPort int    `yaml:"containerPort"`
		TargetPort    string `yaml:"targetPort"`
	}
	k8sProbe struct {
		HTTPGet struct {
			Path string `yaml:"path"`
			Port string `yaml:"port"`
		} `yaml:"httpGet"`
	}
	k8sMount struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
	}
	k8sVolume struct {
		Name   string `yaml:"name"`
		Secret struct {
			SecretName string `yaml:"secretName"`
		} `yaml:"secret"`
	}
)

// loadManifests reads every object of dir's YAML files by kind and name.
func loadManifests(t *testing.T, dir string) map[string]k8sObject {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	require.NoError(t, err)
	require.NotEmpty(t, files)
	objs := map[string]k8sObject{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var o k8sObject
			var raw struct {
				Spec struct {
					Selector map[string]any `yaml:"selector"`
				} `yaml:"spec"`
			}
			var node yaml.Node
			err := dec.Decode(&node)
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err, f)
			require.NoError(t, node.Decode(&o), f)
			require.NoError(t, node.Decode(&raw), f)
			if o.Kind == "Service" { // a Service's selector is a plain label map
				o.Spec.ServiceSelector = map[string]string{}
				for k, v := range raw.Spec.Selector {
					o.Spec.ServiceSelector[k], _ = v.(string)
				}
			}
			objs[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	return objs
}

// runEnv returns the environment variables of `exactly run`'s flags with
// each flag's default as help prints it ("" when none).
func runEnv(t *testing.T) map[string]string {
	t.Helper()
	var out, errOut bytes.Buffer
	require.NoError(t, config().Run(context.Background(), []string{"help", "run"}, &out, &errOut))
	re := regexp.MustCompile(`\(env (EXACTLY_[A-Z0-9_]+)\)\n\s+[^\n]*?(?:\(default ([^)]*)\))?\n`)
	env := map[string]string{}
	for _, m := range re.FindAllStringSubmatch(out.String(), -1) {
		env[m[1]] = m[2]
	}
	require.Contains(t, env, "EXACTLY_BROKERS", "help run lists no flags:\n%s", out.String())
	return env
}

// dockerfile returns the instructions of the Dockerfile's final stage by
// keyword, each instruction's arguments as one string.
func dockerfile(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../../Dockerfile")
	require.NoError(t, err)
	var final map[string][]string
	for line := range strings.SplitSeq(string(b), "\n") {
		kw, args, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch kw = strings.ToUpper(kw); {
		case kw == "FROM":
			final = map[string][]string{kw: {args}}
		case kw != "" && !strings.HasPrefix(kw, "#") && final != nil:
			final[kw] = append(final[kw], strings.TrimSpace(args))
		}
	}
	require.NotNil(t, final, "Dockerfile has no FROM")
	return final
}

func TestDeployManifests(t *testing.T) {
	t.Parallel()
	objs := loadManifests(t, deployDir)
	flags := runEnv(t)

	sts, ok := objs["StatefulSet/exactly-orders"]
	require.True(t, ok, "no StatefulSet exactly-orders in %s", deployDir)
	pod := sts.Spec.Template
	require.Len(t, pod.Spec.Containers, 1)
	c := pod.Spec.Containers[0]
	assert.Equal(t, []string{"run"}, c.Args)

	// Every EXACTLY_ variable, in the pod or its ConfigMap, is a flag of run.
	env := map[string]k8sEnv{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	for _, from := range c.EnvFrom {
		cm, ok := objs["ConfigMap/"+from.ConfigMapRef.Name]
		require.True(t, ok, "envFrom names ConfigMap %s, not in %s", from.ConfigMapRef.Name, deployDir)
		for k, v := range cm.Data {
			assert.NotContains(t, env, k, "%s set both in the pod and in ConfigMap %s", k, cm.Metadata.Name)
			env[k] = k8sEnv{Name: k, Value: v}
		}
	}
	for name := range env {
		_, isFlag := flags[name]
		switch {
		case !strings.HasPrefix(name, "EXACTLY_"):
		case !isFlag:
			t.Errorf("the manifests set %s, which is no flag of exactly run (see exactly help run)", name)
		}
	}

	// The instance ID is the pod name.
	assert.Equal(t, "metadata.name", env["EXACTLY_INSTANCE_ID"].ValueFrom.FieldRef.FieldPath, "EXACTLY_INSTANCE_ID must come from the pod name")

	// The state directory is the per-pod claim, and the image's volume.
	require.Len(t, sts.Spec.VolumeClaims, 1)
	stateDir := env["EXACTLY_STATE_DIR"].Value
	require.NotEmpty(t, stateDir, "EXACTLY_STATE_DIR not set")
	assert.Contains(t, c.Mounts, k8sMount{Name: sts.Spec.VolumeClaims[0].Metadata.Name, MountPath: stateDir}, "the state claim must be mounted at EXACTLY_STATE_DIR")

	// The HTTP port: the program's address, the container's port named
	// http, the probes and the Service.
	_, port, err := net.SplitHostPort(env["EXACTLY_HTTP_ADDR"].Value)
	require.NoError(t, err, "EXACTLY_HTTP_ADDR")
	require.Len(t, c.Ports, 1)
	assert.Equal(t, "http", c.Ports[0].Name)
	assert.Equal(t, port, strconv.Itoa(c.Ports[0].ContainerPort), "containerPort against EXACTLY_HTTP_ADDR")
	assert.Equal(t, "/readyz", c.Readiness.HTTPGet.Path)
	assert.Equal(t, "http", c.Readiness.HTTPGet.Port)
	assert.Equal(t, "/healthz", c.Liveness.HTTPGet.Path)
	assert.Equal(t, "http", c.Liveness.HTTPGet.Port)

	// A headless Service of the StatefulSet's pods, publishing them before
	// they are ready, so that /state owner answers resolve.
	svc, ok := objs["Service/"+sts.Spec.ServiceName]
	require.True(t, ok, "the StatefulSet's serviceName %q is no Service in %s", sts.Spec.ServiceName, deployDir)
	assert.Equal(t, "None", svc.Spec.ClusterIP, "the Service must be headless")
	assert.True(t, svc.Spec.PublishNotReady, "the Service must publish pods that are not ready")
	assert.NotEmpty(t, svc.Spec.ServiceSelector)
	for k, v := range svc.Spec.ServiceSelector {
		assert.Equal(t, v, pod.Metadata.Labels[k], "the Service selects label %s=%s, which the pods lack", k, v)
	}
	require.Len(t, svc.Spec.Ports, 1)
	assert.Equal(t, "http", svc.Spec.Ports[0].TargetPort)
	assert.Equal(t, sts.Spec.Selector.MatchLabels, matchingLabels(pod.Metadata.Labels, sts.Spec.Selector.MatchLabels))

	// A disruption budget over the same pods.
	pdb, ok := objs["PodDisruptionBudget/"+sts.Metadata.Name]
	require.True(t, ok, "no PodDisruptionBudget %s", sts.Metadata.Name)
	require.NotNil(t, pdb.Spec.MaxUnavailable)
	assert.Equal(t, 1, *pdb.Spec.MaxUnavailable)
	assert.Equal(t, pdb.Spec.Selector.MatchLabels, matchingLabels(pod.Metadata.Labels, pdb.Spec.Selector.MatchLabels))

	// The grace period outlasts an open transaction and the HTTP shutdown.
	txnTimeout := env["EXACTLY_TRANSACTION_TIMEOUT"].Value
	if txnTimeout == "" {
		txnTimeout = flags["EXACTLY_TRANSACTION_TIMEOUT"]
	}
	d, err := time.ParseDuration(txnTimeout)
	require.NoError(t, err, "transaction timeout %q", txnTimeout)
	require.NotNil(t, pod.Spec.GracePeriod, "terminationGracePeriodSeconds not set")
	grace := time.Duration(*pod.Spec.GracePeriod) * time.Second
	assert.Greater(t, grace, d+httpShutdown, "terminationGracePeriodSeconds against the transaction timeout %s", d)

	// Files named by *_FILE variables are keys of a mounted Secret.
	mounted := map[string]string{} // mount path -> secret name
	for _, v := range pod.Spec.Volumes {
		for _, m := range c.Mounts {
			if m.Name == v.Name && v.Secret.SecretName != "" {
				mounted[m.MountPath] = v.Secret.SecretName
			}
		}
	}
	for name, e := range env {
		if !strings.HasSuffix(name, "_FILE") {
			continue
		}
		secret, ok := objs["Secret/"+mounted[filepath.Dir(e.Value)]]
		if assert.True(t, ok, "%s=%s is in no mounted Secret", name, e.Value) {
			assert.Contains(t, secret.Strings, filepath.Base(e.Value), "%s=%s: Secret %s has no such key", name, e.Value, secret.Metadata.Name)
		}
	}

	// The image: its defaults and port agree with the pod's.
	df := dockerfile(t)
	assert.Equal(t, []string{port}, df["EXPOSE"], "the Dockerfile's EXPOSE")
	assert.Equal(t, []string{`["/exactly"]`}, df["ENTRYPOINT"])
	assert.Contains(t, df["ENV"], "EXACTLY_STATE_DIR="+stateDir+" EXACTLY_HTTP_ADDR="+env["EXACTLY_HTTP_ADDR"].Value)
	assert.Equal(t, []string{`["` + stateDir + `"]`}, df["VOLUME"])
	require.Len(t, df["USER"], 1)
	assert.NotRegexp(t, `^(0|root)(:|$)`, df["USER"][0], "the image must not run as root")
}

// matchingLabels returns the labels of want that labels has with the same
// value.
func matchingLabels(labels, want map[string]string) map[string]string {
	got := map[string]string{}
	for k, v := range want {
		if labels[k] == v {
			got[k] = v
		}
	}
	return got
}
