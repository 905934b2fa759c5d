package deploy

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/slo"
)

const manifests = "kubernetes"

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// the manifests use; decoding is strict, so a field outside it is an error
// here (and probably a typo there).
type serviceMonitor struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        metav1.ObjectMeta `json:"metadata"`
	Spec            struct {
		Selector  metav1.LabelSelector `json:"selector"`
		Endpoints []struct {
			Port     string `json:"port"`
			Path     string `json:"path"`
			Interval string `json:"interval"`
		} `json:"endpoints"`
	} `json:"spec"`
}

type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Labels          []struct {
		Pairs map[string]string `json:"pairs"`
	} `json:"labels"`
	Resources []string `json:"resources"`
}

// objects are the decoded manifests, by kind and name.
type objects struct {
	deployments     map[string]*appsv1.Deployment
	services        map[string]*corev1.Service
	configMaps      map[string]*corev1.ConfigMap
	pvcs            map[string]*corev1.PersistentVolumeClaim
	pdbs            map[string]*policyv1.PodDisruptionBudget
	serviceMonitors map[string]*serviceMonitor
}

// documents splits a manifest file at its --- lines. Block scalars (the
// ConfigMap's definitions) are indented, so their own --- lines are not
// document separators.
func documents(data []byte) [][]byte {
	var docs [][]byte
	for _, d := range strings.Split("\n"+string(data), "\n---\n") {
		if strings.TrimSpace(stripComments(d)) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

func stripComments(s string) string {
	var b strings.Builder
	for _, l := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// loadManifests decodes every resource of the kustomization strictly into
// the Kubernetes API types: an unknown or misplaced field fails.
func loadManifests(t *testing.T) objects {
	t.Helper()
	var k kustomization
	strict(t, filepath.Join(manifests, "kustomization.yaml"), mustRead(t, filepath.Join(manifests, "kustomization.yaml")), &k)
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Errorf("kustomization.yaml: %s %s", k.APIVersion, k.Kind)
	}
	files, err := filepath.Glob(filepath.Join(manifests, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		if filepath.Base(f) != "kustomization.yaml" {
			want = append(want, filepath.Base(f))
		}
	}
	if got := slices.Sorted(slices.Values(k.Resources)); !slices.Equal(got, want) {
		t.Errorf("kustomization resources %v, want every manifest of %s: %v", got, manifests, want)
	}

	o := objects{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, pvcs: map[string]*corev1.PersistentVolumeClaim{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, serviceMonitors: map[string]*serviceMonitor{},
	}
	for _, res := range k.Resources {
		path := filepath.Join(manifests, res)
		for i, doc := range documents(mustRead(t, path)) {
			where := fmt.Sprintf("%s (document %d)", path, i+1)
			var tm metav1.TypeMeta
			if err := yaml.Unmarshal(doc, &tm); err != nil {
				t.Fatalf("%s: %v", where, err)
			}
			var meta metav1.ObjectMeta
			switch tm.APIVersion + " " + tm.Kind {
			case "apps/v1 Deployment":
				var d appsv1.Deployment
				strict(t, where, doc, &d)
				o.deployments[d.Name], meta = &d, d.ObjectMeta
			case "v1 Service":
				var s corev1.Service
				strict(t, where, doc, &s)
				o.services[s.Name], meta = &s, s.ObjectMeta
			case "v1 ConfigMap":
				var c corev1.ConfigMap
				strict(t, where, doc, &c)
				o.configMaps[c.Name], meta = &c, c.ObjectMeta
			case "v1 PersistentVolumeClaim":
				var p corev1.PersistentVolumeClaim
				strict(t, where, doc, &p)
				o.pvcs[p.Name], meta = &p, p.ObjectMeta
			case "policy/v1 PodDisruptionBudget":
				var p policyv1.PodDisruptionBudget
				strict(t, where, doc, &p)
				o.pdbs[p.Name], meta = &p, p.ObjectMeta
			case "monitoring.coreos.com/v1 ServiceMonitor":
				var s serviceMonitor
				strict(t, where, doc, &s)
				o.serviceMonitors[s.Metadata.Name], meta = &s, s.Metadata
			default:
				t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
			}
			if meta.Name == "" {
				t.Errorf("%s: no metadata.name", where)
			}
			// Namespace-less, so that -n or an overlay decides.
			if meta.Namespace != "" {
				t.Errorf("%s: metadata.namespace %q; the manifests are namespace-less", where, meta.Namespace)
			}
		}
	}
	return o
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func strict(t *testing.T, where string, doc []byte, out any) {
	t.Helper()
	if err := yaml.UnmarshalStrict(doc, out); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// TestKubernetesManifests checks each object and that they fit together:
// the probes, ports, mounts and names of the Deployment against the
// Service, the ServiceMonitor, the PDB, the PVC and the configuration that
// slogate loads from the ConfigMap.
func TestKubernetesManifests(t *testing.T) {
	o := loadManifests(t)
	d := only(t, o.deployments, "Deployment")
	svc := only(t, o.services, "Service")
	sm := only(t, o.serviceMonitors, "ServiceMonitor")
	pdb := only(t, o.pdbs, "PodDisruptionBudget")

	// One replica: the runs' bbolt file can be opened by one process only.
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment replicas %v, want 1", d.Spec.Replicas)
	}
	pod := d.Spec.Template
	if !selects(d.Spec.Selector, pod.Labels) {
		t.Errorf("the Deployment's selector does not select its pods")
	}
	psc := pod.Spec.SecurityContext
	if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot {
		t.Errorf("pod securityContext.runAsNonRoot is not true")
	}
	if len(pod.Spec.Containers) != 1 {
		t.Fatalf("want one container, got %d", len(pod.Spec.Containers))
	}
	c := pod.Spec.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Errorf("container %s has no securityContext", c.Name)
	default:
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("container securityContext.readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("container securityContext.allowPrivilegeEscalation is not false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("container does not drop ALL capabilities")
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, okReq := c.Resources.Requests[r]
		lim, okLim := c.Resources.Limits[r]
		if !okReq || !okLim {
			t.Errorf("container resources: %s request and limit are required", r)
		} else if req.Cmp(lim) > 0 {
			t.Errorf("container resources: %s request %s above the limit %s", r, req.String(), lim.String())
		}
	}

	// The probes and the Service reach the port slogate listens on.
	port := containerPort(t, c, intstr.FromString("http"))
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"livenessProbe", c.LivenessProbe, "/health"}, {"readinessProbe", c.ReadinessProbe, "/ping"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe on %s", p.name, p.path)
			continue
		}
		if p.probe.HTTPGet.Path != p.path {
			t.Errorf("%s path %s, want %s", p.name, p.probe.HTTPGet.Path, p.path)
		}
		if got := containerPort(t, c, p.probe.HTTPGet.Port); got != port {
			t.Errorf("%s port %d, want the container's http port %d", p.name, got, port)
		}
	}
	if !selects(&metav1.LabelSelector{MatchLabels: svc.Spec.Selector}, pod.Labels) {
		t.Errorf("the Service's selector %v does not select the pods %v", svc.Spec.Selector, pod.Labels)
	}
	var svcPort *corev1.ServicePort
	for i := range svc.Spec.Ports {
		if svc.Spec.Ports[i].Name == "http" {
			svcPort = &svc.Spec.Ports[i]
		}
	}
	if svcPort == nil || svcPort.Port != 8080 {
		t.Fatalf("the Service needs port 8080 named http, got %+v", svc.Spec.Ports)
	}
	if got := containerPort(t, c, svcPort.TargetPort); got != port {
		t.Errorf("the Service's targetPort reaches %d, want %d", got, port)
	}

	// The ServiceMonitor scrapes /metrics through that Service port.
	if sm.APIVersion != "monitoring.coreos.com/v1" || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: %s with %d endpoints, want monitoring.coreos.com/v1 with one", sm.APIVersion, len(sm.Spec.Endpoints))
	}
	if ep := sm.Spec.Endpoints[0]; ep.Port != svcPort.Name || ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoint port %q path %q, want port %q path /metrics", ep.Port, ep.Path, svcPort.Name)
	}
	if !selects(&sm.Spec.Selector, svc.Labels) {
		t.Errorf("the ServiceMonitor's selector does not select the Service (labels %v)", svc.Labels)
	}

	if !selects(pdb.Spec.Selector, pod.Labels) {
		t.Errorf("the PodDisruptionBudget does not select the pods")
	}
	if (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
		t.Errorf("the PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable")
	}

	checkConfiguration(t, o, d, c, port)
}

// checkConfiguration loads slogate.yaml from its ConfigMap with slogate's
// own loader, and checks that the paths it names are where the Deployment
// mounts things, and that the definitions load without a problem.
func checkConfiguration(t *testing.T, o objects, d *appsv1.Deployment, c corev1.Container, port int32) {
	t.Helper()
	volumes := map[string]corev1.Volume{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		volumes[v.Name] = v
	}
	// mountOf returns the mount that holds path and its volume.
	mountOf := func(path string) (corev1.VolumeMount, corev1.Volume) {
		t.Helper()
		var best corev1.VolumeMount
		for _, m := range c.VolumeMounts {
			if (path == m.MountPath || strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/")) && len(m.MountPath) > len(best.MountPath) {
				best = m
			}
		}
		if best.Name == "" {
			t.Fatalf("no volume is mounted at %s", path)
		}
		v, ok := volumes[best.Name]
		if !ok {
			t.Fatalf("volumeMount %s names no volume", best.Name)
		}
		return best, v
	}

	// The --config flag names the file mounted from the configuration.
	configPath := ""
	for _, a := range c.Args {
		if p, ok := strings.CutPrefix(a, "--config="); ok {
			configPath = p
		}
	}
	if configPath == "" {
		t.Fatalf("container args %v: no --config=", c.Args)
	}
	m, v := mountOf(configPath)
	if v.ConfigMap == nil {
		t.Fatalf("%s is not mounted from a ConfigMap", configPath)
	}
	cm, ok := o.configMaps[v.ConfigMap.Name]
	if !ok {
		t.Fatalf("ConfigMap %s is not among the manifests", v.ConfigMap.Name)
	}
	key := m.SubPath
	if key == "" {
		key = strings.TrimPrefix(strings.TrimPrefix(configPath, m.MountPath), "/")
	}
	text, ok := cm.Data[key]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s for %s", cm.Name, key, configPath)
	}
	file := filepath.Join(t.TempDir(), "slogate.yaml")
	if err := os.WriteFile(file, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(config.LoadOptions{File: file})
	if err != nil {
		t.Fatalf("ConfigMap %s, %s: %v", cm.Name, key, err)
	}

	if _, p, err := net.SplitHostPort(cfg.Web.ListenAddress); err != nil || p != strconv.Itoa(int(port)) {
		t.Errorf("web.listen-address %s does not listen on the container port %d", cfg.Web.ListenAddress, port)
	}

	// storage.path is a writable, persistent volume.
	m, v = mountOf(cfg.Storage.Path)
	switch {
	case m.ReadOnly:
		t.Errorf("storage.path %s is mounted read-only", cfg.Storage.Path)
	case v.PersistentVolumeClaim != nil:
		if _, ok := o.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
			t.Errorf("PersistentVolumeClaim %s is not among the manifests", v.PersistentVolumeClaim.ClaimName)
		}
		// A ReadWriteOnce volume held by the old pod would block a rolling
		// update's new pod.
		if d.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
			t.Errorf("the data volume is a PVC: the Deployment strategy must be Recreate, got %q", d.Spec.Strategy.Type)
		}
	case v.EmptyDir != nil:
	default:
		t.Errorf("storage.path %s is on volume %s, neither a PVC nor an emptyDir", cfg.Storage.Path, v.Name)
	}

	// The API token file is in a Secret.
	if cfg.Web.APITokenFile != "" {
		if _, v := mountOf(cfg.Web.APITokenFile); v.Secret == nil {
			t.Errorf("web.api-token-file %s is not mounted from a Secret", cfg.Web.APITokenFile)
		}
	}

	// The definitions: every ConfigMap key is a file of the mounted
	// directory, loaded as slogate would load the directory.
	if len(cfg.Definitions) == 0 {
		t.Fatal("the configuration names no definitions")
	}
	dir := t.TempDir()
	for _, def := range cfg.Definitions {
		m, v := mountOf(def)
		if v.ConfigMap == nil {
			t.Fatalf("definitions %s are not mounted from a ConfigMap", def)
		}
		defs, ok := o.configMaps[v.ConfigMap.Name]
		if !ok || len(defs.Data) == 0 {
			t.Fatalf("ConfigMap %s with definitions is missing or empty", v.ConfigMap.Name)
		}
		if strings.TrimSuffix(def, "/") != strings.TrimSuffix(m.MountPath, "/") {
			t.Errorf("definitions %s: want the whole mounted directory %s", def, m.MountPath)
		}
		for name, text := range defs.Data {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	set, diags := slo.Load(dir)
	if len(diags) > 0 {
		t.Errorf("the ConfigMap's definitions:\n%s", diags)
	}
	if len(set.SLOs) == 0 {
		t.Errorf("the ConfigMap defines no SLO")
	}
}

// containerPort resolves a port by number or name against the container.
func containerPort(t *testing.T, c corev1.Container, p intstr.IntOrString) int32 {
	t.Helper()
	for _, cp := range c.Ports {
		if (p.Type == intstr.String && cp.Name == p.StrVal) || (p.Type == intstr.Int && cp.ContainerPort == p.IntVal) {
			return cp.ContainerPort
		}
	}
	t.Fatalf("container %s has no port %s", c.Name, p.String())
	return 0
}

func selects(sel *metav1.LabelSelector, labels map[string]string) bool {
	if sel == nil || len(sel.MatchLabels) == 0 || len(sel.MatchExpressions) > 0 {
		return false
	}
	for k, v := range sel.MatchLabels {
		if labels[k] != v {
			return false
		}
	}
	return true
}

func only[T any](t *testing.T, m map[string]*T, kind string) *T {
	t.Helper()
	if len(m) != 1 {
		t.Fatalf("want one %s, got %d", kind, len(m))
	}
	for _, v := range m {
		return v
	}
	return nil
}
