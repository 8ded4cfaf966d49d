package deploy_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"

	"github.com/gatehouse/gatehouse/internal/admin"
	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// stopMargin is what gatehouse waits for an instance after SIGKILL.
const stopMargin = 5 * time.Second

// minGracePeriod is the longest orderly stop of a gatehouse running cfg,
// what terminationGracePeriodSeconds (or docker's --stop-timeout, or
// systemd's TimeoutStopSec) must allow before SIGKILL:
//
//   - shutdown_delay: /readyz fails and gatehouse keeps serving while
//     endpoints are removed;
//   - the public drain: in-flight requests, up to the longest stop_timeout;
//   - then every instance, all at once: its own drain (in-flight requests
//     the public drain gave up on), up to its stop_timeout, and SIGTERM
//     to SIGKILL, up to its stop_timeout again;
//   - and up to 5 s for the process to go after SIGKILL.
//
// So shutdown_delay + 3 × the longest stop_timeout + 5 s. A stop that
// finishes its public drain in time leaves the instances' drains
// nothing to wait for, which is the usual case; the bound is for the case
// that matters, the one where a grace period too short SIGKILLs
// gatehouse and its apps mid-request.
func minGracePeriod(cfg *config.Config) time.Duration {
	return cfg.ShutdownDelay.D() + 3*maxStop(cfg) + stopMargin
}

// maxStop is the longest stop_timeout of cfg's apps.
func maxStop(cfg *config.Config) time.Duration {
	var longest time.Duration
	for _, a := range cfg.Apps {
		longest = max(longest, a.StopTimeout.D())
	}
	return longest
}

// fixture is the autoscaling bundle (which includes the base), the
// adapter's rules, the image the Deployment runs, and the metrics
// gatehouse registers; the checks find the Deployment's container and
// config in it.
type fixture struct {
	b     *bundle
	rules *adapterConfig
	image image
	reg   *prometheus.Registry

	d   *appsv1.Deployment
	c   *corev1.Container
	cfg *config.Config
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	b, err := loadKustomization(filepath.Join(k8sDir, "autoscaling"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := loadAdapterRules(filepath.Join(k8sDir, "autoscaling", adapterRules))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(repoRoot, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	img, errs := checkDockerfile(string(data))
	if len(errs) > 0 {
		t.Fatalf("Dockerfile: %v", errs)
	}
	f := &fixture{b: b, rules: rules, image: img,
		reg: metrics.New(supervisor.New(config.Default(), supervisor.Options{})).Registry()}
	if len(b.deployments) != 1 || len(b.deployments[0].Spec.Template.Spec.Containers) != 1 {
		t.Fatalf("want one Deployment of one container, the gatehouse that runs the app")
	}
	f.d = b.deployments[0]
	f.c = &f.d.Spec.Template.Spec.Containers[0]
	if f.cfg, err = f.mountedConfig(); err != nil {
		t.Fatal(err)
	}
	return f
}

// command is what the container runs: its command, else the image's
// ENTRYPOINT.
func (f *fixture) command() []string {
	if len(f.c.Command) > 0 {
		return slices.Concat(f.c.Command, f.c.Args)
	}
	return slices.Concat(f.image.entrypoint, f.c.Args)
}

// mountedConfig is the gatehouse config the container's gatehouse run -c
// reads: the file of the configMapGenerator whose ConfigMap is mounted
// at that path.
func (f *fixture) mountedConfig() (*config.Config, error) {
	cmd := f.command()
	if len(cmd) != len(entrypointPrefix)+1 || !slices.Equal(cmd[:len(entrypointPrefix)], entrypointPrefix) {
		return nil, fmt.Errorf("container runs %q, want %q and the config's path", cmd, entrypointPrefix)
	}
	path := cmd[len(entrypointPrefix)]
	for _, m := range f.c.VolumeMounts {
		key := filepath.Base(path)
		switch {
		case m.SubPath == "" && m.MountPath == filepath.Dir(path):
		case m.SubPath != "" && m.MountPath == path:
			key = m.SubPath
		default:
			continue
		}
		v := f.volume(m.Name)
		if v == nil || v.ConfigMap == nil || len(v.ConfigMap.Items) > 0 {
			return nil, fmt.Errorf("%s is mounted from volume %s, want a whole ConfigMap", path, m.Name)
		}
		sc, ok := f.b.configs[v.ConfigMap.Name]
		if !ok || sc.key != key {
			return nil, fmt.Errorf("%s is key %s of ConfigMap %s, which no configMapGenerator makes", path, key, v.ConfigMap.Name)
		}
		return sc.cfg, nil
	}
	return nil, fmt.Errorf("no volume is mounted where the config %s is", path)
}

func (f *fixture) volume(name string) *corev1.Volume {
	for i, v := range f.d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &f.d.Spec.Template.Spec.Volumes[i]
		}
	}
	return nil
}

func portOf(addr string) int32 {
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		return -1
	}
	n, err := strconv.ParseInt(p, 10, 32)
	if err != nil {
		return -1
	}
	return int32(n)
}

// containerPort resolves a probe's or Service's port (a name or a number)
// to a port of the container; -1 when it names none.
func (f *fixture) containerPort(p intstr.IntOrString) int32 {
	for _, cp := range f.c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort
		}
	}
	return -1
}

// tokenRequired says whether gatehouse refuses to start without an admin
// token: its admin listener is not on loopback and the file has none.
func (f *fixture) tokenRequired() bool {
	return !admin.IsLoopback(f.cfg.Admin) && f.cfg.AdminToken == ""
}

// tokenSecret is the Secret key GATEHOUSE_ADMIN_TOKEN comes from.
func (f *fixture) tokenSecret() *corev1.SecretKeySelector {
	for _, e := range f.c.Env {
		if e.Name == "GATEHOUSE_ADMIN_TOKEN" && e.ValueFrom != nil {
			return e.ValueFrom.SecretKeyRef
		}
	}
	return nil
}

func (f *fixture) podLabels() labels.Set { return labels.Set(f.d.Spec.Template.Labels) }

// errs collects a check's problems.
type errs []error

func (e *errs) add(format string, a ...any) { *e = append(*e, fmt.Errorf(format, a...)) }

// check is one cross-check: it adds what it finds wrong to e.
type check struct {
	name string
	run  func(f *fixture, e *errs)
}

// checks are the cross-checks between the manifests and the config (and
// the image, and gatehouse's metrics), by name.
var checks = []check{
	{"container ports", func(f *fixture, e *errs) {
		want := []int32{portOf(f.cfg.Listen), portOf(f.cfg.Admin)}
		if f.cfg.TLS != nil {
			want = append(want, portOf(f.cfg.TLS.Listen))
		}
		var got []int32
		for _, p := range f.c.Ports {
			got = append(got, p.ContainerPort)
			if p.Name == "" {
				e.add("container port %d has no name for probes and Services to use", p.ContainerPort)
			}
		}
		slices.Sort(want)
		slices.Sort(got)
		if d := cmp.Diff(want, got); d != "" {
			e.add("container ports are not the config's listeners (-config +container):\n%s", d)
		}
	}},
	{"admin token", func(f *fixture, e *errs) {
		if !f.tokenRequired() {
			return
		}
		s := f.tokenSecret()
		if s == nil || s.Name == "" || s.Key == "" || s.Optional != nil && *s.Optional {
			e.add("admin %q is not loopback: gatehouse needs GATEHOUSE_ADMIN_TOKEN from a Secret (not optional)", f.cfg.Admin)
		}
	}},
	{"probes", func(f *fixture, e *errs) {
		for _, p := range []struct {
			field    string
			probe    *corev1.Probe
			endpoint string
		}{
			{"livenessProbe", f.c.LivenessProbe, "/livez"},
			{"readinessProbe", f.c.ReadinessProbe, "/readyz"},
			{"startupProbe", f.c.StartupProbe, "/readyz"},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				e.add("%s: want an httpGet of gatehouse's %s", p.field, p.endpoint)
				continue
			}
			g := p.probe.HTTPGet
			var want string
			switch port := f.containerPort(g.Port); port {
			case portOf(f.cfg.Admin):
				want = p.endpoint
			case portOf(f.cfg.Listen):
				if f.cfg.HealthPrefix == "" {
					e.add("%s: on the public port, where gatehouse serves health only with health_prefix set", p.field)
					continue
				}
				want = f.cfg.HealthPrefix + p.endpoint
			default:
				e.add("%s: port %s is neither the admin nor the public listener", p.field, g.Port.String())
				continue
			}
			if g.Path != want {
				e.add("%s: path %q, want %q", p.field, g.Path, want)
			}
		}
	}},
	{"startup budget", func(f *fixture, e *errs) {
		p := f.c.StartupProbe
		if p == nil {
			e.add("no startupProbe: liveness would judge gatehouse before its apps have had start_timeout")
			return
		}
		period, failures := orDefault(p.PeriodSeconds, 10), orDefault(p.FailureThreshold, 3)
		budget := time.Duration(p.InitialDelaySeconds+period*failures) * time.Second
		for _, name := range f.cfg.Order {
			a := f.cfg.Apps[name]
			if !a.External() && budget < a.StartTimeout.D() {
				e.add("startupProbe allows %s (%d × %ds + %ds), less than app %s's start_timeout %s",
					budget, failures, period, p.InitialDelaySeconds, name, a.StartTimeout.D())
			}
		}
	}},
	{"grace period", func(f *fixture, e *errs) {
		grace := time.Duration(30) * time.Second // Kubernetes' default
		if g := f.d.Spec.Template.Spec.TerminationGracePeriodSeconds; g != nil {
			grace = time.Duration(*g) * time.Second
		}
		if want := minGracePeriod(f.cfg); grace < want {
			e.add("terminationGracePeriodSeconds %s < shutdown_delay + 3 × the longest stop_timeout + %s = %s",
				grace, stopMargin, want)
		}
	}},
	{"data_dir writable", func(f *fixture, e *errs) {
		for _, m := range f.c.VolumeMounts {
			rel, err := filepath.Rel(m.MountPath, f.cfg.DataDir)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || m.ReadOnly {
				continue
			}
			if v := f.volume(m.Name); v != nil && (v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil) {
				return
			}
		}
		e.add("data_dir %s is on no writable volume, and the root filesystem is read-only", f.cfg.DataDir)
	}},
	{"security", func(f *fixture, e *errs) {
		pod, sc := f.d.Spec.Template.Spec.SecurityContext, f.c.SecurityContext
		if pod == nil {
			pod = &corev1.PodSecurityContext{}
		}
		if sc == nil {
			sc = &corev1.SecurityContext{}
		}
		// A container's own setting wins over the pod's.
		nonRoot, uid := sc.RunAsNonRoot, sc.RunAsUser
		if nonRoot == nil {
			nonRoot = pod.RunAsNonRoot
		}
		if uid == nil {
			uid = pod.RunAsUser
		}
		if nonRoot == nil || !*nonRoot {
			e.add("runAsNonRoot is not true")
		}
		if uid != nil && int(*uid) != f.image.uid {
			e.add("runAsUser %d is not the image's user %d, who owns the image's data_dir", *uid, f.image.uid)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			e.add("readOnlyRootFilesystem is not true")
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			e.add("allowPrivilegeEscalation is not false")
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			e.add("capabilities do not drop ALL")
		}
	}},
	{"resources", func(f *fixture, e *errs) {
		r := f.c.Resources
		for _, q := range []struct {
			what string
			ok   bool
		}{
			{"requests.cpu", !r.Requests.Cpu().IsZero()},
			{"requests.memory", !r.Requests.Memory().IsZero()},
			{"limits.memory", !r.Limits.Memory().IsZero()},
		} {
			if !q.ok {
				e.add("resources.%s is not set", q.what)
			}
		}
	}},
	{"selectors", func(f *fixture, e *errs) {
		pod := f.podLabels()
		matches := func(what string, sel *metav1.LabelSelector) {
			s, err := metav1.LabelSelectorAsSelector(sel)
			if err != nil || s.Empty() || !s.Matches(pod) {
				e.add("%s selector %v does not select the Deployment's pods %v (%v)", what, sel, pod, err)
			}
		}
		matches("Deployment "+f.d.Name, f.d.Spec.Selector)
		for _, s := range f.b.services {
			if len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(pod) {
				e.add("Service %s selector %v does not select the Deployment's pods %v", s.Name, s.Spec.Selector, pod)
			}
		}
		if len(f.b.pdbs) == 0 {
			e.add("no PodDisruptionBudget")
		}
		for _, p := range f.b.pdbs {
			matches("PodDisruptionBudget "+p.Name, p.Spec.Selector)
		}
		for _, h := range f.b.hpas {
			want := autoscalingTarget{"apps/v1", "Deployment", f.d.Name}
			got := autoscalingTarget{h.Spec.ScaleTargetRef.APIVersion, h.Spec.ScaleTargetRef.Kind, h.Spec.ScaleTargetRef.Name}
			if d := cmp.Diff(want, got); d != "" {
				e.add("HorizontalPodAutoscaler %s scales something else (-want +got):\n%s", h.Name, d)
			}
		}
	}},
	{"service target ports", func(f *fixture, e *errs) {
		for _, s := range f.b.services {
			for _, p := range s.Spec.Ports {
				target := p.TargetPort
				if target.Type == intstr.Int && target.IntVal == 0 {
					target = intstr.FromInt32(p.Port) // Kubernetes' default
				}
				if f.containerPort(target) < 0 {
					e.add("Service %s port %s: targetPort %s is no container port", s.Name, p.Name, target.String())
				}
			}
		}
	}},
	{"service monitor", func(f *fixture, e *errs) {
		if len(f.b.monitors) == 0 {
			e.add("no ServiceMonitor")
		}
		for _, m := range f.b.monitors {
			checkMonitor(f, m, e)
		}
	}},
	{"hpa", func(f *fixture, e *errs) {
		if len(f.b.hpas) == 0 {
			e.add("no HorizontalPodAutoscaler")
		}
		for _, h := range f.b.hpas {
			for _, m := range h.Spec.Metrics {
				if m.Pods == nil {
					e.add("HorizontalPodAutoscaler %s: metric of type %s; the rules here make per-pod metrics", h.Name, m.Type)
					continue
				}
				checkPodsMetric(f, m.Pods.Metric.Name, e)
			}
		}
	}},
}

type autoscalingTarget struct{ APIVersion, Kind, Name string }

func orDefault(v, def int32) int32 {
	if v == 0 {
		return def
	}
	return v
}

// checkMonitor checks that m scrapes gatehouse's /metrics on the admin
// listener, with the admin token when one is required.
func checkMonitor(f *fixture, m *serviceMonitor, e *errs) {
	var svc *corev1.Service
	for _, s := range f.b.services {
		if len(m.Spec.Selector.MatchLabels) > 0 && labels.SelectorFromSet(m.Spec.Selector.MatchLabels).Matches(labels.Set(s.Labels)) {
			if svc != nil {
				e.add("ServiceMonitor %s selects Services %s and %s: Prometheus would scrape each pod twice", m.Metadata.Name, svc.Name, s.Name)
			}
			svc = s
		}
	}
	if svc == nil {
		e.add("ServiceMonitor %s selects no Service", m.Metadata.Name)
		return
	}
	for _, ep := range m.Spec.Endpoints {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
		if i < 0 {
			e.add("ServiceMonitor %s: port %q is not a port of Service %s", m.Metadata.Name, ep.Port, svc.Name)
			continue
		}
		if got := f.containerPort(svc.Spec.Ports[i].TargetPort); got != portOf(f.cfg.Admin) {
			e.add("ServiceMonitor %s: port %q reaches container port %d, not the admin listener %s", m.Metadata.Name, ep.Port, got, f.cfg.Admin)
		}
		if ep.Path != "/metrics" {
			e.add("ServiceMonitor %s: path %q, want /metrics", m.Metadata.Name, ep.Path)
		}
		if !f.tokenRequired() {
			continue
		}
		s := f.tokenSecret()
		a := ep.Authorization
		if a == nil || s == nil || a.Type != "Bearer" || a.Credentials.Name != s.Name || a.Credentials.Key != s.Key {
			e.add("ServiceMonitor %s: /metrics needs the admin token: want authorization Bearer from the Secret key GATEHOUSE_ADMIN_TOKEN comes from", m.Metadata.Name)
		}
	}
}

var (
	gatehouseMetric = regexp.MustCompile(`gatehouse_[a-z_]+`)
	seriesName      = regexp.MustCompile(`^\s*([a-zA-Z_:][a-zA-Z0-9_:]*)`)
)

// checkPodsMetric checks that an adapter rule makes the per-pod metric
// name out of series gatehouse really exports.
func checkPodsMetric(f *fixture, name string, e *errs) {
	for _, r := range f.rules.Rules {
		series := seriesName.FindStringSubmatch(r.SeriesQuery)
		if series == nil {
			continue
		}
		made := r.Name.As
		if made == "" {
			made = series[1] // the adapter's default: the series' own name
		}
		if made != name {
			continue
		}
		if ok, err := regexp.MatchString(r.Name.Matches, series[1]); err != nil || !ok {
			e.add("adapter rule for %s: name.matches %q does not match its series %s", name, r.Name.Matches, series[1])
		}
		for _, label := range []string{"namespace", "pod"} {
			if r.Resources.Overrides[label].Resource != label {
				e.add("adapter rule for %s: label %s is not mapped to the %s resource, so the metric is not per pod", name, label, label)
			}
		}
		for _, m := range unique(gatehouseMetric.FindAllString(r.SeriesQuery+" "+r.MetricsQuery, -1)) {
			if !registered(f.reg, m) {
				e.add("adapter rule for %s reads %s, which gatehouse does not export", name, m)
			}
		}
		return
	}
	e.add("HorizontalPodAutoscaler metric %s: no rule in %s makes it", name, adapterRules)
}

// registered reports whether gatehouse registers a metric called name. It
// asks the registry itself: registering a probe gauge of that name fails
// if and only if a metric of that name is already registered, whether or
// not it has series yet (internal/metrics' dashboard test does the same).
func registered(reg *prometheus.Registry, name string) bool {
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: "registration probe"})
	if err := reg.Register(g); err != nil {
		return true
	}
	reg.Unregister(g)
	return false
}

// The manifests agree with the gatehouse config they ship, the image they
// run, and the metrics gatehouse exports.
func TestManifestsMatchConfig(t *testing.T) {
	f := newFixture(t)
	for _, c := range checks {
		t.Run(c.name, func(t *testing.T) {
			var e errs
			c.run(f, &e)
			for _, err := range e {
				t.Error(err)
			}
		})
	}
}

// Each kustomization applies on its own (kubectl apply -k): the base on
// any cluster (no CRD kinds in it), the autoscaling one on top of it; and
// every YAML file under deploy/kubernetes is read by this test, so none
// escapes it.
func TestKustomizations(t *testing.T) {
	base, err := loadKustomization(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	if len(base.monitors) > 0 {
		t.Errorf("the base has a ServiceMonitor: kubectl apply -k %s would fail on a cluster without the Prometheus Operator", k8sDir)
	}
	full, err := loadKustomization(filepath.Join(k8sDir, "autoscaling"))
	if err != nil {
		t.Fatal(err)
	}
	all, err := yamlFiles(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	read := unique(append(full.files, filepath.Join(k8sDir, "autoscaling", adapterRules)))
	if d := cmp.Diff(unique(all), read); d != "" {
		t.Errorf("YAML files under %s that no check reads, or missing (-on disk +read):\n%s", k8sDir, d)
	}
}

// The cross-checks bite: each mutation of a good fixture breaks one
// invariant, and the check for it fails.
func TestCrossChecksReject(t *testing.T) {
	tests := []struct {
		name, check string
		mutate      func(f *fixture)
	}{
		{"grace period too short", "grace period", func(f *fixture) {
			f.d.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(30))
		}},
		{"grace period by the 2× rule only", "grace period", func(f *fixture) {
			g := int64((minGracePeriod(f.cfg) - maxStop(f.cfg)) / time.Second)
			f.d.Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}},
		{"liveness probes the app", "probes", func(f *fixture) { f.c.LivenessProbe.HTTPGet.Path = "/healthz" }},
		{"readiness without the prefix", "probes", func(f *fixture) { f.c.ReadinessProbe.HTTPGet.Path = "/readyz" }},
		{"health on the public port without health_prefix", "probes", func(f *fixture) { f.cfg.HealthPrefix = "" }},
		{"startup budget below start_timeout", "startup budget", func(f *fixture) { f.c.StartupProbe.FailureThreshold = 5 }},
		{"admin port moved", "container ports", func(f *fixture) { f.cfg.Admin = ":9902" }},
		{"admin token not passed", "admin token", func(f *fixture) { f.c.Env = nil }},
		{"data_dir off the emptyDir", "data_dir writable", func(f *fixture) { f.cfg.DataDir = "/srv/gatehouse" }},
		{"writable root filesystem", "security", func(f *fixture) { f.c.SecurityContext.ReadOnlyRootFilesystem = new(false) }},
		{"no memory limit", "resources", func(f *fixture) { delete(f.c.Resources.Limits, corev1.ResourceMemory) }},
		{"Service selects other pods", "selectors", func(f *fixture) {
			f.b.services[0].Spec.Selector = map[string]string{"app.kubernetes.io/name": "other"}
		}},
		{"PDB selects other pods", "selectors", func(f *fixture) {
			f.b.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"app": "other"}
		}},
		{"Service targets a port the container lacks", "service target ports", func(f *fixture) {
			f.b.services[0].Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}},
		{"ServiceMonitor without the token", "service monitor", func(f *fixture) {
			f.b.monitors[0].Spec.Endpoints[0].Authorization = nil
		}},
		{"HPA metric no rule makes", "hpa", func(f *fixture) {
			f.b.hpas[0].Spec.Metrics[0].Pods.Metric.Name = "gatehouse_nonesuch"
		}},
		{"adapter rule on a metric gatehouse does not export", "hpa", func(f *fixture) {
			f.rules.Rules[0].MetricsQuery += " + sum(gatehouse_inflight_requests_total)"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			i := slices.IndexFunc(checks, func(c check) bool { return c.name == tt.check })
			if i < 0 {
				t.Fatalf("no check %q", tt.check)
			}
			var before errs
			checks[i].run(f, &before)
			if len(before) > 0 {
				t.Fatalf("the good fixture already fails %s: %v", tt.check, before)
			}
			tt.mutate(f)
			var e errs
			checks[i].run(f, &e)
			if len(e) == 0 {
				t.Errorf("check %q passed after the mutation", tt.check)
			}
		})
	}
}
