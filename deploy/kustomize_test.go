package deploy

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"
)

// kustomizeBuild renders an overlay as `kustomize build` does, with
// kustomize's default (root-only) load restrictions.
func kustomizeBuild(t *testing.T, overlay string) [][]byte {
	t.Helper()
	k := krusty.MakeKustomizer(krusty.MakeDefaultOptions())
	resMap, err := k.Run(filesys.MakeFsOnDisk(), filepath.Join("kubernetes", "overlays", overlay))
	require.NoError(t, err, "kustomize build %s", overlay)
	var docs [][]byte
	for _, r := range resMap.Resources() {
		b, err := r.AsYAML()
		require.NoError(t, err)
		docs = append(docs, b)
	}
	return docs
}

// typed returns an empty object of the Kubernetes API type for kind.
func typed(apiVersion, kind string) (any, error) {
	switch apiVersion + "/" + kind {
	case "v1/ConfigMap":
		return &corev1.ConfigMap{}, nil
	case "v1/Service":
		return &corev1.Service{}, nil
	case "v1/ServiceAccount":
		return &corev1.ServiceAccount{}, nil
	case "apps/v1/Deployment":
		return &appsv1.Deployment{}, nil
	case "apps/v1/DaemonSet":
		return &appsv1.DaemonSet{}, nil
	case "autoscaling/v2/HorizontalPodAutoscaler":
		return &autoscalingv2.HorizontalPodAutoscaler{}, nil
	case "policy/v1/PodDisruptionBudget":
		return &policyv1.PodDisruptionBudget{}, nil
	case "networking.k8s.io/v1/NetworkPolicy":
		return &networkingv1.NetworkPolicy{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRole":
		return &rbacv1.ClusterRole{}, nil
	case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
		return &rbacv1.ClusterRoleBinding{}, nil
	}
	return nil, fmt.Errorf("no API type registered in this test for %s %s", apiVersion, kind)
}

// decodeStrict decodes every rendered object into its API type, failing on
// any field the type does not have.
func decodeStrict(t *testing.T, docs [][]byte) map[string]any {
	t.Helper()
	out := map[string]any{}
	for _, doc := range docs {
		var meta struct {
			APIVersion string `json:"apiVersion"`
			Kind       string `json:"kind"`
			Metadata   struct {
				Name string `json:"name"`
			} `json:"metadata"`
		}
		require.NoError(t, yaml.Unmarshal(doc, &meta))
		obj, err := typed(meta.APIVersion, meta.Kind)
		require.NoError(t, err)
		require.NoError(t, yaml.UnmarshalStrict(doc, obj), "%s %s does not decode strictly:\n%s", meta.Kind, meta.Metadata.Name, doc)
		out[meta.Kind+"/"+meta.Metadata.Name] = obj
	}
	return out
}

func configFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "configs", name))
	require.NoError(t, err)
	return string(b)
}

// findConfigMap returns the generated ConfigMap (its name carries a hash).
func findConfigMap(t *testing.T, objs map[string]any) *corev1.ConfigMap {
	t.Helper()
	for key, o := range objs {
		if cm, ok := o.(*corev1.ConfigMap); ok && strings.HasPrefix(key, "ConfigMap/otelcol-fabric-configs-") {
			return cm
		}
	}
	t.Fatal("no otelcol-fabric-configs ConfigMap rendered")
	return nil
}

func TestGatewayOverlay(t *testing.T) {
	objs := decodeStrict(t, kustomizeBuild(t, "gateway"))
	for _, want := range []string{
		"Deployment/otelcol-fabric-gateway", "Service/otelcol-fabric-gateway", "Service/otelcol-fabric-gateway-headless",
		"HorizontalPodAutoscaler/otelcol-fabric-gateway", "PodDisruptionBudget/otelcol-fabric-gateway",
		"NetworkPolicy/otelcol-fabric-gateway", "ServiceAccount/otelcol-fabric-gateway",
	} {
		assert.Contains(t, objs, want)
	}
	cm := findConfigMap(t, objs)
	assert.Equal(t, configFile(t, "gateway.yaml"), cm.Data["gateway.yaml"], "the ConfigMap is configs/gateway.yaml")
	assert.Equal(t, configFile(t, "agent.yaml"), cm.Data["agent.yaml"], "the ConfigMap is configs/agent.yaml")

	dep := objs["Deployment/otelcol-fabric-gateway"].(*appsv1.Deployment)
	assert.Equal(t, "observability", dep.Namespace)
	pod := dep.Spec.Template.Spec
	require.Len(t, pod.Containers, 1)
	c := pod.Containers[0]
	assert.Equal(t, "ghcr.io/otelcol-fabric/otelcol-fabric:0.1.0", c.Image)
	assert.Equal(t, []string{"--config=/etc/otelcol-fabric/gateway.yaml"}, c.Args)
	assert.Equal(t, cm.Name, pod.Volumes[0].ConfigMap.Name, "the Deployment mounts the generated (hashed) ConfigMap")
	assert.Equal(t, "/", c.ReadinessProbe.HTTPGet.Path)
	assert.Equal(t, "health", c.LivenessProbe.HTTPGet.Port.String())
	assert.False(t, c.Resources.Limits.Memory().IsZero(), "a memory limit: memory_limiter's limit_percentage is taken from it")
	assert.True(t, *pod.SecurityContext.RunAsNonRoot)
	assert.True(t, *c.SecurityContext.ReadOnlyRootFilesystem)
	envSecret := map[string]string{}
	for _, e := range c.Env {
		if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
			envSecret[e.Name] = e.ValueFrom.SecretKeyRef.Name
		}
	}
	assert.Equal(t, "otelcol-fabric-ingest", envSecret["FABRIC_INGEST_TOKEN"], "the token comes from a Secret")
	assertGOMEMLIMIT(t, c)

	// Selectors match the pod labels.
	labels := dep.Spec.Template.Labels
	for k, v := range dep.Spec.Selector.MatchLabels {
		assert.Equal(t, v, labels[k])
	}
	for _, name := range []string{"Service/otelcol-fabric-gateway", "Service/otelcol-fabric-gateway-headless"} {
		svc := objs[name].(*corev1.Service)
		require.NotEmpty(t, svc.Spec.Selector, name)
		for k, v := range svc.Spec.Selector {
			assert.Equal(t, v, labels[k], name)
		}
	}
	assert.Equal(t, corev1.ClusterIPNone, objs["Service/otelcol-fabric-gateway-headless"].(*corev1.Service).Spec.ClusterIP)
	pdb := objs["PodDisruptionBudget/otelcol-fabric-gateway"].(*policyv1.PodDisruptionBudget)
	require.NotNil(t, pdb.Spec.Selector)
	assert.Equal(t, dep.Spec.Selector.MatchLabels, pdb.Spec.Selector.MatchLabels)
	np := objs["NetworkPolicy/otelcol-fabric-gateway"].(*networkingv1.NetworkPolicy)
	assert.Equal(t, dep.Spec.Selector.MatchLabels, np.Spec.PodSelector.MatchLabels)
	hpa := objs["HorizontalPodAutoscaler/otelcol-fabric-gateway"].(*autoscalingv2.HorizontalPodAutoscaler)
	assert.Equal(t, dep.Name, hpa.Spec.ScaleTargetRef.Name)
}

func TestAgentOverlay(t *testing.T) {
	objs := decodeStrict(t, kustomizeBuild(t, "agent"))
	for _, want := range []string{
		"DaemonSet/otelcol-fabric-agent", "ServiceAccount/otelcol-fabric-agent",
		"ClusterRole/otelcol-fabric-agent", "ClusterRoleBinding/otelcol-fabric-agent",
	} {
		assert.Contains(t, objs, want)
	}
	cm := findConfigMap(t, objs)
	assert.Equal(t, configFile(t, "agent.yaml"), cm.Data["agent.yaml"])

	ds := objs["DaemonSet/otelcol-fabric-agent"].(*appsv1.DaemonSet)
	pod := ds.Spec.Template.Spec
	c := pod.Containers[0]
	assert.Equal(t, []string{"--config=/etc/otelcol-fabric/agent.yaml"}, c.Args)
	hostPaths := map[string]string{}
	for _, v := range pod.Volumes {
		if v.HostPath != nil {
			hostPaths[v.Name] = v.HostPath.Path
		}
		if v.ConfigMap != nil {
			assert.Equal(t, cm.Name, v.ConfigMap.Name)
		}
	}
	assert.Equal(t, "/var/log/pods", hostPaths["varlogpods"], "container logs for filelog")
	assert.Equal(t, "/", hostPaths["hostfs"], "the host root for hostmetrics")
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		env[e.Name] = e
	}
	assert.Equal(t, "spec.nodeName", env["K8S_NODE_NAME"].ValueFrom.FieldRef.FieldPath)
	assert.Equal(t, "/hostfs", env["FABRIC_HOSTFS"].Value)
	assertGOMEMLIMIT(t, c)
	ports := map[int32]int32{}
	for _, p := range c.Ports {
		ports[p.ContainerPort] = p.HostPort
	}
	assert.Equal(t, int32(4317), ports[4317], "node-local OTLP/gRPC")

	crb := objs["ClusterRoleBinding/otelcol-fabric-agent"].(*rbacv1.ClusterRoleBinding)
	assert.Equal(t, pod.ServiceAccountName, crb.Subjects[0].Name)
	assert.Equal(t, ds.Namespace, crb.Subjects[0].Namespace, "the binding names the namespace the agent runs in")
	role := objs["ClusterRole/otelcol-fabric-agent"].(*rbacv1.ClusterRole)
	var resources []string
	for _, r := range role.Rules {
		resources = append(resources, r.Resources...)
		assert.NotContains(t, r.Verbs, "create")
	}
	assert.Contains(t, resources, "pods", "k8sattributes watches pods")
	assert.Contains(t, resources, "nodes/stats", "kubeletstats reads the kubelet")
}

// assertGOMEMLIMIT: the container sets Go's soft memory limit to 80% of its
// memory limit (within 1 MiB), where memory_limiter's hard limit is.
func assertGOMEMLIMIT(t *testing.T, c corev1.Container) {
	t.Helper()
	var v string
	for _, e := range c.Env {
		if e.Name == "GOMEMLIMIT" {
			v = e.Value
		}
	}
	mib, ok := strings.CutSuffix(v, "MiB")
	require.True(t, ok, "GOMEMLIMIT is set in MiB, got %q", v)
	var got int64
	_, err := fmt.Sscan(mib, &got)
	require.NoError(t, err)
	want := c.Resources.Limits.Memory().Value() * 8 / 10 >> 20
	assert.InDelta(t, want, got, 1, "GOMEMLIMIT is 80%% of the memory limit (%s)", c.Resources.Limits.Memory())
}

// The rendered output is stable YAML: a smoke check that nothing renders empty.
func TestRenderedNotEmpty(t *testing.T) {
	for _, overlay := range []string{"gateway", "agent"} {
		docs := kustomizeBuild(t, overlay)
		require.NotEmpty(t, docs)
		for _, d := range docs {
			assert.False(t, bytes.Equal(bytes.TrimSpace(d), []byte("{}")))
		}
	}
}
