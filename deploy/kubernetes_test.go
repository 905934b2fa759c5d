package deploy

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/spf13/pflag"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	sigsjson "sigs.k8s.io/json"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/slogate/slogate/config"
	"github.com/slogate/slogate/slo"
)

// The single-replica manifests are in base/, which kubernetes/ (what
// `kubectl apply -k deploy/kubernetes` builds) includes; the overlays build
// on base/: kustomize refuses an overlay inside the directory of the
// kustomization it builds on.
const (
	kubernetes = "kubernetes"
	manifests  = "kubernetes/base"
	haOverlay  = "kubernetes/overlays/ha"
	sharded    = "kubernetes/overlays/sharded"

	// What the overlays pass as --storage.url and --storage.password-file.
	postgresURL  = "postgres://slogate@postgres:5432/slogate?sslmode=verify-full"
	passwordFile = "/etc/slogate/pg/password"
)

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

// kustomization is the part of a kustomization.yaml (or a Component's) the
// manifests use.
type kustomization struct {
	metav1.TypeMeta `json:",inline"`
	Labels          []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors"`
	} `json:"labels"`
	Resources  []string `json:"resources"`
	Components []string `json:"components"`
	NameSuffix string   `json:"nameSuffix"`
	Patches    []struct {
		Path   string         `json:"path"`
		Patch  string         `json:"patch"`
		Target map[string]any `json:"target"`
	} `json:"patches"`
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

func newObjects() objects {
	return objects{
		deployments: map[string]*appsv1.Deployment{}, services: map[string]*corev1.Service{},
		configMaps: map[string]*corev1.ConfigMap{}, pvcs: map[string]*corev1.PersistentVolumeClaim{},
		pdbs: map[string]*policyv1.PodDisruptionBudget{}, serviceMonitors: map[string]*serviceMonitor{},
	}
}

// add decodes one manifest strictly into its Kubernetes API type (an
// unknown or misplaced field fails) and files it by kind and name.
func (o objects) add(t *testing.T, where string, doc []byte) {
	t.Helper()
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	var meta metav1.ObjectMeta
	dup := false
	switch tm.APIVersion + " " + tm.Kind {
	case "apps/v1 Deployment":
		var d appsv1.Deployment
		strict(t, where, doc, &d)
		_, dup = o.deployments[d.Name]
		o.deployments[d.Name], meta = &d, d.ObjectMeta
	case "v1 Service":
		var s corev1.Service
		strict(t, where, doc, &s)
		_, dup = o.services[s.Name]
		o.services[s.Name], meta = &s, s.ObjectMeta
	case "v1 ConfigMap":
		var c corev1.ConfigMap
		strict(t, where, doc, &c)
		_, dup = o.configMaps[c.Name]
		o.configMaps[c.Name], meta = &c, c.ObjectMeta
	case "v1 PersistentVolumeClaim":
		var p corev1.PersistentVolumeClaim
		strict(t, where, doc, &p)
		_, dup = o.pvcs[p.Name]
		o.pvcs[p.Name], meta = &p, p.ObjectMeta
	case "policy/v1 PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		strict(t, where, doc, &p)
		_, dup = o.pdbs[p.Name]
		o.pdbs[p.Name], meta = &p, p.ObjectMeta
	case "monitoring.coreos.com/v1 ServiceMonitor":
		var s serviceMonitor
		strict(t, where, doc, &s)
		_, dup = o.serviceMonitors[s.Metadata.Name]
		o.serviceMonitors[s.Metadata.Name], meta = &s, s.Metadata
	default:
		t.Fatalf("%s: unexpected %s %s", where, tm.APIVersion, tm.Kind)
	}
	if meta.Name == "" {
		t.Errorf("%s: no metadata.name", where)
	}
	if dup {
		t.Errorf("%s: a second %s %s", where, tm.Kind, meta.Name)
	}
	// Namespace-less, so that -n or an overlay decides.
	if meta.Namespace != "" {
		t.Errorf("%s: metadata.namespace %q; the manifests are namespace-less", where, meta.Namespace)
	}
}

// ids lists the objects as kind/name, sorted.
func (o objects) ids() []string {
	var ids []string
	add := func(kind string, names []string) {
		for _, n := range names {
			ids = append(ids, kind+"/"+n)
		}
	}
	add("ConfigMap", sortedKeys(o.configMaps))
	add("Deployment", sortedKeys(o.deployments))
	add("PersistentVolumeClaim", sortedKeys(o.pvcs))
	add("PodDisruptionBudget", sortedKeys(o.pdbs))
	add("Service", sortedKeys(o.services))
	add("ServiceMonitor", sortedKeys(o.serviceMonitors))
	return ids
}

func sortedKeys[T any](m map[string]*T) []string {
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
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

// readKustomization decodes dir/kustomization.yaml strictly.
func readKustomization(t *testing.T, dir string) kustomization {
	t.Helper()
	path := filepath.Join(dir, "kustomization.yaml")
	var k kustomization
	strict(t, path, mustRead(t, path), &k)
	switch k.APIVersion + " " + k.Kind {
	case "kustomize.config.k8s.io/v1beta1 Kustomization", "kustomize.config.k8s.io/v1alpha1 Component":
	default:
		t.Errorf("%s: %s %s", path, k.APIVersion, k.Kind)
	}
	return k
}

// loadManifests decodes every resource file of base/ strictly into the
// Kubernetes API types, as files: the checks do not depend on kustomize
// for the base.
func loadManifests(t *testing.T) objects {
	t.Helper()
	// deploy/kubernetes, what the README applies, is the base and nothing
	// else.
	if top := readKustomization(t, kubernetes); !slices.Equal(top.Resources, []string{"base"}) ||
		len(top.Components)+len(top.Patches)+len(top.Labels) > 0 || top.NameSuffix != "" {
		t.Errorf("%s/kustomization.yaml: want resources [base] and nothing else, got %+v", kubernetes, top)
	}
	k := readKustomization(t, manifests)
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

	o := newObjects()
	for _, res := range k.Resources {
		path := filepath.Join(manifests, res)
		for i, doc := range documents(mustRead(t, path)) {
			o.add(t, fmt.Sprintf("%s (document %d)", path, i+1), doc)
		}
	}
	return o
}

// render builds dir with kustomize's own library, as `kubectl apply -k`
// does (kubectl embeds it), and decodes what it makes.
func render(t *testing.T, dir string) objects {
	t.Helper()
	abs, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	m, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), abs)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	o := newObjects()
	for _, r := range m.Resources() {
		doc, err := r.AsYAML()
		if err != nil {
			t.Fatalf("kustomize build %s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
		}
		o.add(t, fmt.Sprintf("kustomize build %s: %s %s", dir, r.GetKind(), r.GetName()), doc)
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

// strict decodes doc as the API server does: field names are case
// sensitive (encoding/json would take readonly for readOnly, which the
// server drops), and an unknown or duplicate field fails.
func strict(t *testing.T, where string, doc []byte, out any) {
	t.Helper()
	j, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	strictErrs, err := sigsjson.UnmarshalStrict(j, out)
	if err == nil {
		err = errors.Join(strictErrs...)
	}
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
}

// TestKustomizations checks every kustomization under kubernetes/: what it
// names exists, its patches parse, and every YAML file beside it is used (a
// patch file left out of patches would silently change nothing).
func TestKustomizations(t *testing.T) {
	err := filepath.WalkDir(kubernetes, func(path string, e os.DirEntry, err error) error {
		if err != nil || !e.IsDir() {
			return err
		}
		if _, err := os.Stat(filepath.Join(path, "kustomization.yaml")); err != nil {
			return nil
		}
		k := readKustomization(t, path)
		used := map[string]bool{"kustomization.yaml": true}
		for _, ref := range slices.Concat(k.Resources, k.Components) {
			if _, err := os.Stat(filepath.Join(path, ref)); err != nil {
				t.Errorf("%s/kustomization.yaml names %s: %v", path, ref, err)
			}
			used[ref] = true
		}
		for i, p := range k.Patches {
			text := []byte(p.Patch)
			if (p.Path == "") == (p.Patch == "") {
				t.Errorf("%s/kustomization.yaml: patch %d needs one of path and patch", path, i)
				continue
			}
			if p.Path != "" {
				text = mustRead(t, filepath.Join(path, p.Path))
				used[p.Path] = true
			}
			var v any
			if err := yaml.Unmarshal(text, &v); err != nil || v == nil {
				t.Errorf("%s/kustomization.yaml: patch %d does not parse: %v", path, i, err)
			}
		}
		files, err := filepath.Glob(filepath.Join(path, "*.yaml"))
		if err != nil {
			return err
		}
		for _, f := range files {
			if !used[filepath.Base(f)] {
				t.Errorf("%s is in no resources or patches of %s/kustomization.yaml", f, path)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestKubernetesManifests checks each object and that they fit together:
// the probes, ports, mounts and names of the Deployment against the
// Service, the ServiceMonitor, the PDB, the PVC and the configuration that
// slogate loads from the ConfigMap.
func TestKubernetesManifests(t *testing.T) {
	o := loadManifests(t)
	// kustomize makes the same objects of them.
	if got, want := render(t, kubernetes).ids(), o.ids(); !slices.Equal(got, want) {
		t.Errorf("kustomize build %s makes %v, want %v", kubernetes, got, want)
	}
	d := only(t, o.deployments, "Deployment")
	only(t, o.pdbs, "PodDisruptionBudget")

	// One replica: the runs' bbolt file can be opened by one process only.
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 1 {
		t.Errorf("Deployment replicas %v, want 1", d.Spec.Replicas)
	}
	if cfg := checkDeployment(t, o, d); cfg.Storage.URL != "" {
		t.Errorf("the base sets storage.url %q; it is the single replica on storage.path", cfg.Storage.URL)
	}
}

// TestKubernetesHA builds overlays/ha as `kubectl apply -k` would and
// checks, besides all that TestKubernetesManifests checks of a Deployment:
// three replicas rolled one at a time, PostgreSQL instead of the volume,
// each replica named after its pod, the Prometheus-style probes, spreading
// over nodes, the shutdown and a budget that keeps two replicas up.
func TestKubernetesHA(t *testing.T) {
	o := render(t, haOverlay)
	d := only(t, o.deployments, "Deployment")
	if d.Name != "slogate" {
		t.Errorf("Deployment %s, want slogate", d.Name)
	}
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("Deployment replicas %v, want 3", d.Spec.Replicas)
	}
	if len(o.pvcs) > 0 {
		t.Errorf("PersistentVolumeClaims %v: with storage.url nothing uses one", sortedKeys(o.pvcs))
	}
	checkRollingUpdate(t, d)
	cfg := checkDeployment(t, o, d)
	checkPostgres(t, d, cfg)
	checkHAPod(t, d)

	pdb := only(t, o.pdbs, "PodDisruptionBudget")
	if pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable != intstr.FromInt32(2) || pdb.Spec.MaxUnavailable != nil {
		t.Errorf("PodDisruptionBudget minAvailable %v maxUnavailable %v, want minAvailable 2 alone", pdb.Spec.MinAvailable, pdb.Spec.MaxUnavailable)
	}
}

// shardLabel tells the shards' pods apart.
const shardLabel = "slogate.dev/shard"

// TestKubernetesSharded builds overlays/sharded: two Deployments of two
// replicas, one per shard, each the ha overlay's Deployment but for the
// shard flags and label, on the same database, behind one Service and
// ServiceMonitor, with a budget each.
func TestKubernetesSharded(t *testing.T) {
	o := render(t, sharded)
	ha := only(t, render(t, haOverlay).deployments, "Deployment")
	if got, want := sortedKeys(o.deployments), []string{"slogate-shard-0", "slogate-shard-1"}; !slices.Equal(got, want) {
		t.Fatalf("Deployments %v, want %v", got, want)
	}
	// The shards share the configuration and definitions: both load every
	// definition and keep their own SLOs.
	if got, want := sortedKeys(o.configMaps), []string{"slogate-config", "slogate-definitions"}; !slices.Equal(got, want) {
		t.Errorf("ConfigMaps %v, want %v", got, want)
	}
	if len(o.pvcs) > 0 {
		t.Errorf("PersistentVolumeClaims %v: with storage.url nothing uses one", sortedKeys(o.pvcs))
	}
	for i := range 2 {
		d := o.deployments[fmt.Sprintf("slogate-shard-%d", i)]
		t.Run(d.Name, func(t *testing.T) {
			if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 {
				t.Errorf("replicas %v, want 2", d.Spec.Replicas)
			}
			if got := d.Spec.Template.Labels[shardLabel]; got != strconv.Itoa(i) {
				t.Errorf("pod label %s=%q, want %d", shardLabel, got, i)
			}
			checkRollingUpdate(t, d)
			// The Service and ServiceMonitor reach these pods: any replica
			// answers any gate, and every one's /metrics is scraped.
			cfg := checkDeployment(t, o, d)
			if cfg.Shard.Count != 2 || cfg.Shard.Index != i {
				t.Errorf("shard.count %d shard.index %d, want 2 and %d", cfg.Shard.Count, cfg.Shard.Index, i)
			}
			// The same database for both: a shard reads the other's SLO
			// statuses there.
			checkPostgres(t, d, cfg)
			checkHAPod(t, d)
			if diff := cmp.Diff(unshard(ha.Spec.Template), unshard(d.Spec.Template)); diff != "" {
				t.Errorf("the pod differs from the ha overlay's in more than the shard (-ha +shard):\n%s", diff)
			}
		})
	}
	// Neither a shard's Deployment nor its budget selects the other's pods.
	for name, d := range o.deployments {
		for other, od := range o.deployments {
			if other != name && selects(d.Spec.Selector, od.Spec.Template.Labels) {
				t.Errorf("Deployment %s selects the pods of %s", name, other)
			}
		}
	}
	if len(o.pdbs) != 2 {
		t.Errorf("PodDisruptionBudgets %v, want one per shard", sortedKeys(o.pdbs))
	}
	for name, p := range o.pdbs {
		var of []string
		for dn, d := range o.deployments {
			if selects(p.Spec.Selector, d.Spec.Template.Labels) {
				of = append(of, dn)
			}
		}
		if len(of) != 1 {
			t.Errorf("PodDisruptionBudget %s selects the pods of %v, want one shard's", name, of)
		}
	}
}

// unshard removes from a pod template what tells the shards apart: the
// shard flags and label.
func unshard(tmpl corev1.PodTemplateSpec) corev1.PodTemplateSpec {
	tmpl = *tmpl.DeepCopy()
	delete(tmpl.Labels, shardLabel)
	if a := tmpl.Spec.Affinity; a != nil && a.PodAntiAffinity != nil {
		for i := range a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution {
			if sel := a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution[i].PodAffinityTerm.LabelSelector; sel != nil {
				delete(sel.MatchLabels, shardLabel)
			}
		}
	}
	for i := range tmpl.Spec.Containers {
		c := &tmpl.Spec.Containers[i]
		c.Args = slices.DeleteFunc(c.Args, func(a string) bool { return strings.HasPrefix(a, "--shard.") })
	}
	return tmpl
}

// checkRollingUpdate: a new pod turns ready before an old one goes, so the
// gates keep answering through a rollout.
func checkRollingUpdate(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	s := d.Spec.Strategy
	if s.Type != appsv1.RollingUpdateDeploymentStrategyType || s.RollingUpdate == nil {
		t.Errorf("Deployment %s strategy %+v, want RollingUpdate with maxUnavailable 0 and maxSurge 1", d.Name, s)
		return
	}
	if mu := s.RollingUpdate.MaxUnavailable; mu == nil || *mu != intstr.FromInt32(0) {
		t.Errorf("Deployment %s maxUnavailable %v, want 0", d.Name, mu)
	}
	if ms := s.RollingUpdate.MaxSurge; ms == nil || *ms != intstr.FromInt32(1) {
		t.Errorf("Deployment %s maxSurge %v, want 1", d.Name, ms)
	}
}

// checkPostgres checks the overlays' storage: the PostgreSQL URL, the
// password from the slogate-postgres Secret, and --storage.replica from
// the pod's name by the downward API (checkConfiguration checks that it
// expands to the pod's name).
func checkPostgres(t *testing.T, d *appsv1.Deployment, cfg *config.Config) {
	t.Helper()
	if cfg.Storage.URL != postgresURL {
		t.Errorf("storage.url %q, want %q", cfg.Storage.URL, postgresURL)
	}
	if cfg.Storage.PasswordFile != passwordFile {
		t.Errorf("storage.password-file %q, want %q", cfg.Storage.PasswordFile, passwordFile)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if _, v := mountOf(t, d, c, passwordFile); v.Secret == nil || v.Secret.SecretName != "slogate-postgres" {
		t.Errorf("%s is on volume %s, want the Secret slogate-postgres", passwordFile, v.Name)
	}
	if !slices.Contains(c.Args, "--storage.replica=$(POD_NAME)") {
		t.Errorf("args %v: no --storage.replica=$(POD_NAME)", c.Args)
	}
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAME" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.FieldRef == nil || c.Env[i].ValueFrom.FieldRef.FieldPath != "metadata.name" {
		t.Errorf("env %+v: want POD_NAME from fieldRef metadata.name", c.Env)
	}
}

// checkHAPod checks what the ha overlay adds to the pod of the base.
func checkHAPod(t *testing.T, d *appsv1.Deployment) {
	t.Helper()
	spec := d.Spec.Template.Spec
	c := spec.Containers[0]
	if p := c.ReadinessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/-/ready" {
		t.Errorf("readinessProbe %+v, want httpGet /-/ready", p)
	}
	if p := c.LivenessProbe; p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/-/healthy" {
		t.Errorf("livenessProbe %+v, want httpGet /-/healthy", p)
	}

	// Replicas on different nodes where the cluster can: a preference, so
	// that a cluster of fewer nodes still runs them all.
	a := spec.Affinity
	if a == nil || a.PodAntiAffinity == nil {
		t.Errorf("no podAntiAffinity")
	} else {
		if len(a.PodAntiAffinity.RequiredDuringSchedulingIgnoredDuringExecution) > 0 {
			t.Errorf("a required podAntiAffinity leaves replicas pending on a cluster of fewer nodes; want a preferred one")
		}
		if !slices.ContainsFunc(a.PodAntiAffinity.PreferredDuringSchedulingIgnoredDuringExecution, func(w corev1.WeightedPodAffinityTerm) bool {
			return w.PodAffinityTerm.TopologyKey == "kubernetes.io/hostname" && selects(w.PodAffinityTerm.LabelSelector, d.Spec.Template.Labels)
		}) {
			t.Errorf("podAntiAffinity %+v: want a preferred term over kubernetes.io/hostname selecting the pods", a.PodAntiAffinity)
		}
	}

	// The preStop sleep and slogate's bounded shutdown fit in the grace
	// period (checkDeployment rejects exec hooks: no shell in the image).
	grace := spec.TerminationGracePeriodSeconds
	if grace == nil {
		t.Fatalf("no terminationGracePeriodSeconds")
	}
	need := slogateShutdown(t)
	if c.Lifecycle != nil && c.Lifecycle.PreStop != nil && c.Lifecycle.PreStop.Sleep != nil {
		need += c.Lifecycle.PreStop.Sleep.Seconds
	}
	if *grace < need || *grace > 60 {
		t.Errorf("terminationGracePeriodSeconds %d: want at least the preStop sleep and slogate's shutdown (%ds), and not much more", *grace, need)
	}
}

// slogateShutdown is how long `slogate serve` takes at most to stop after
// SIGTERM, from cmd/slogate's shutdownTimeout, in seconds.
func slogateShutdown(t *testing.T) int64 {
	t.Helper()
	const file = "../cmd/slogate/signals.go"
	m := regexp.MustCompile(`shutdownTimeout\s*=\s*(\d+)\s*\*\s*time\.Second`).FindSubmatch(mustRead(t, file))
	if m == nil {
		t.Fatalf("%s: no shutdownTimeout = N * time.Second", file)
	}
	n, err := strconv.ParseInt(string(m[1]), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// checkDeployment checks a Deployment against the other objects: its
// pods' security and resources, the probes, ports and names against the
// Service, the ServiceMonitor and the PodDisruptionBudget, and the
// configuration slogate loads from the ConfigMap and the args. It returns
// that configuration.
func checkDeployment(t *testing.T, o objects, d *appsv1.Deployment) *config.Config {
	t.Helper()
	svc := only(t, o.services, "Service")
	sm := only(t, o.serviceMonitors, "ServiceMonitor")

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
	// The image is distroless: no shell, nor any binary but slogate, for an
	// exec hook or probe to run.
	if l := c.Lifecycle; l != nil && ((l.PreStop != nil && l.PreStop.Exec != nil) || (l.PostStart != nil && l.PostStart.Exec != nil)) {
		t.Errorf("container lifecycle %+v: an exec hook cannot run in the distroless image", l)
	}

	// The probes and the Service reach the port slogate listens on.
	// /health and /ping answer as /-/healthy and /-/ready too.
	port := containerPort(t, c, intstr.FromString("http"))
	for _, p := range []struct {
		name  string
		probe *corev1.Probe
		paths []string
	}{{"livenessProbe", c.LivenessProbe, []string{"/health", "/-/healthy"}}, {"readinessProbe", c.ReadinessProbe, []string{"/ping", "/-/ready"}}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("%s: want an httpGet probe on %s", p.name, p.paths[0])
			continue
		}
		if !slices.Contains(p.paths, p.probe.HTTPGet.Path) {
			t.Errorf("%s path %s, want one of %v", p.name, p.probe.HTTPGet.Path, p.paths)
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

	// The ServiceMonitor scrapes /metrics through that Service port: every
	// pod behind the Service.
	if sm.APIVersion != "monitoring.coreos.com/v1" || len(sm.Spec.Endpoints) != 1 {
		t.Fatalf("ServiceMonitor: %s with %d endpoints, want monitoring.coreos.com/v1 with one", sm.APIVersion, len(sm.Spec.Endpoints))
	}
	if ep := sm.Spec.Endpoints[0]; ep.Port != svcPort.Name || ep.Path != "/metrics" {
		t.Errorf("ServiceMonitor endpoint port %q path %q, want port %q path /metrics", ep.Port, ep.Path, svcPort.Name)
	}
	if !selects(&sm.Spec.Selector, svc.Labels) {
		t.Errorf("the ServiceMonitor's selector does not select the Service (labels %v)", svc.Labels)
	}

	// One PodDisruptionBudget covers the pods, and lets a drain evict one
	// of them when all are up.
	var pdbs []*policyv1.PodDisruptionBudget
	for _, p := range o.pdbs {
		if selects(p.Spec.Selector, pod.Labels) {
			pdbs = append(pdbs, p)
		}
	}
	if len(pdbs) != 1 {
		t.Errorf("%d PodDisruptionBudgets select the pods, want one", len(pdbs))
	} else if pdb := pdbs[0]; (pdb.Spec.MinAvailable == nil) == (pdb.Spec.MaxUnavailable == nil) {
		t.Errorf("the PodDisruptionBudget needs exactly one of minAvailable and maxUnavailable")
	} else if m := pdb.Spec.MinAvailable; m != nil && (m.Type != intstr.Int || d.Spec.Replicas == nil || m.IntVal >= *d.Spec.Replicas) {
		t.Errorf("PodDisruptionBudget minAvailable %s of %v replicas blocks every drain", m.String(), d.Spec.Replicas)
	}

	return checkConfiguration(t, o, d, c, port)
}

// checkConfiguration loads the configuration as `slogate serve` would from
// the container's args (expanded as the kubelet expands them) and the
// slogate.yaml of its ConfigMap, with slogate's own loader, and checks that
// the paths it names are where the Deployment mounts things, and that the
// definitions load without a problem.
func checkConfiguration(t *testing.T, o objects, d *appsv1.Deployment, c corev1.Container, port int32) *config.Config {
	t.Helper()
	args := expandArgs(t, d, c)
	if len(args) == 0 || args[0] != "serve" {
		t.Fatalf("container args %v: want serve and its flags", c.Args)
	}
	flags := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	config.RegisterFlags(flags)
	if err := flags.Parse(args[1:]); err != nil {
		t.Fatalf("container args %v: %v", c.Args, err)
	}
	if flags.NArg() > 0 {
		t.Errorf("container args %v: serve takes no arguments, got %v", c.Args, flags.Args())
	}

	// The --config flag names the file mounted from the configuration.
	configPath := flags.Lookup(config.ConfigFlag).Value.String()
	if configPath == "" {
		t.Fatalf("container args %v: no --config=", c.Args)
	}
	m, v := mountOf(t, d, c, configPath)
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
	// The flags override the file, as in the container.
	cfg, err := config.Load(config.LoadOptions{File: file, Flags: flags})
	if err != nil {
		t.Fatalf("ConfigMap %s, %s with args %v: %v", cm.Name, key, c.Args, err)
	}

	if _, p, err := net.SplitHostPort(cfg.Web.ListenAddress); err != nil || p != strconv.Itoa(int(port)) {
		t.Errorf("web.listen-address %s does not listen on the container port %d", cfg.Web.ListenAddress, port)
	}

	if cfg.Storage.URL == "" {
		// storage.path is a writable, persistent volume.
		m, v = mountOf(t, d, c, cfg.Storage.Path)
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
	} else {
		// PostgreSQL: the replicas are stateless, and each has its own
		// name in leases and run records, its pod's.
		for _, v := range d.Spec.Template.Spec.Volumes {
			if v.PersistentVolumeClaim != nil {
				t.Errorf("storage.url is set, yet volume %s is a PVC: the replicas are stateless", v.Name)
			}
		}
		if cfg.Storage.PasswordFile != "" {
			if _, v := mountOf(t, d, c, cfg.Storage.PasswordFile); v.Secret == nil {
				t.Errorf("storage.password-file %s is not mounted from a Secret", cfg.Storage.PasswordFile)
			}
		} else if !slices.ContainsFunc(c.Env, func(e corev1.EnvVar) bool {
			return e.Name == "PGPASSWORD" && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil
		}) {
			t.Errorf("storage.url without storage.password-file nor PGPASSWORD from a Secret")
		}
		if cfg.Storage.Replica != podName(d) {
			t.Errorf("storage.replica %q in pod %s: want the pod's name (--storage.replica=$(POD_NAME), POD_NAME from metadata.name)", cfg.Storage.Replica, podName(d))
		}
	}

	// The API token file is in a Secret.
	if cfg.Web.APITokenFile != "" {
		if _, v := mountOf(t, d, c, cfg.Web.APITokenFile); v.Secret == nil {
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
		m, v := mountOf(t, d, c, def)
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
	return cfg
}

// mountOf returns the container's mount that holds path and its volume.
func mountOf(t *testing.T, d *appsv1.Deployment, c corev1.Container, path string) (corev1.VolumeMount, corev1.Volume) {
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
	for _, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == best.Name {
			return best, v
		}
	}
	t.Fatalf("volumeMount %s names no volume", best.Name)
	return best, corev1.Volume{}
}

// podName is a name that a pod of d gets, which the downward API passes
// on as metadata.name.
func podName(d *appsv1.Deployment) string { return d.Name + "-6b8d9c7f5d-x7k2p" }

// varRef is what the kubelet expands in args: $(VAR), and $$ for a $.
var varRef = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)`)

// expandArgs expands the container's args as the kubelet does, with the
// values of the container's env (podName for metadata.name). A reference
// to a variable the container does not define would be passed on as
// written: an error here.
func expandArgs(t *testing.T, d *appsv1.Deployment, c corev1.Container) []string {
	t.Helper()
	env := map[string]string{}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "metadata.name":
			env[e.Name] = podName(d)
		default:
			env[e.Name] = "value-of-" + e.Name
		}
	}
	var args []string
	for _, a := range c.Args {
		args = append(args, varRef.ReplaceAllStringFunc(a, func(ref string) string {
			if ref == "$$" {
				return "$"
			}
			v, ok := env[ref[2:len(ref)-1]]
			if !ok {
				t.Errorf("arg %q: %s is no env var of the container", a, ref)
				return ref
			}
			return v
		}))
	}
	return args
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
