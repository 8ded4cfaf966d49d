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

	"github.com/gatehouse/gatehouse/internal/config"
	"github.com/gatehouse/gatehouse/internal/metrics"
	"github.com/gatehouse/gatehouse/internal/supervisor"
)

// What gatehouse waits at the end of its stop: for an instance after
// SIGKILL (supervisor), for the admin API's long-lived answers (server's
// shutdown step 5), and, as PID 1, for the processes left over in the
// container after SIGTERM (cli's finishTimeout).
const (
	killWait   = 5 * time.Second
	adminWait  = time.Second
	finishWait = 2 * time.Second
)

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
//   - up to 5 s for the process to go after SIGKILL;
//   - up to 1 s for the admin API's open answers (logs -f);
//   - and, as PID 1, up to 2 s for what is left over in the container.
//
// So shutdown_delay + 3 × the longest stop_timeout + 8 s. A stop that
// finishes its public drain in time leaves the instances' drains
// nothing to wait for, which is the usual case; the bound is for the case
// that matters, the one where a grace period too short SIGKILLs
// gatehouse and its apps mid-request.
func minGracePeriod(cfg *config.Config) time.Duration {
	return cfg.ShutdownDelay.D() + 3*maxStop(cfg) + killWait + adminWait + finishWait
}

// maxStop is the longest stop_timeout of cfg's apps.
func maxStop(cfg *config.Config) time.Duration {
	var longest time.Duration
	for _, a := range cfg.Apps {
		longest = max(longest, a.StopTimeout.D())
	}
	return longest
}

// fixture is one gatehouse Deployment (d, its container c, the config
// cfg it runs) in the kustomization that applies it (b), with the
// adapter's rules, the image it runs, and the metrics gatehouse
// registers.
type fixture struct {
	b     *bundle
	rules *adapterConfig
	image image
	reg   *prometheus.Registry

	d   *appsv1.Deployment
	c   *corev1.Container
	cfg *config.Config
}

func newFixture(t *testing.T, dir, deployment string) *fixture {
	t.Helper()
	b, err := loadKustomization(dir)
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
	i := slices.IndexFunc(b.deployments, func(d *appsv1.Deployment) bool { return d.Name == deployment })
	if i < 0 {
		t.Fatalf("%s has no Deployment %s", dir, deployment)
	}
	f.d = b.deployments[i]
	if f.c, f.cfg, err = b.gatehouse(f.d, img); err != nil {
		t.Fatalf("Deployment %s: %v", deployment, err)
	}
	return f
}

// gatehouse returns d's container and the gatehouse config it runs: the
// file of the configMapGenerator whose ConfigMap is mounted where the
// container's gatehouse run -c reads (its command, else the image's
// ENTRYPOINT).
func (b *bundle) gatehouse(d *appsv1.Deployment, img image) (*corev1.Container, *config.Config, error) {
	if len(d.Spec.Template.Spec.Containers) != 1 {
		return nil, nil, fmt.Errorf("want one container, the gatehouse that runs the app")
	}
	c := &d.Spec.Template.Spec.Containers[0]
	cmd := slices.Concat(c.Command, c.Args)
	if len(c.Command) == 0 {
		cmd = slices.Concat(img.entrypoint, c.Args)
	}
	if len(cmd) != len(entrypointPrefix)+1 || !slices.Equal(cmd[:len(entrypointPrefix)], entrypointPrefix) {
		return nil, nil, fmt.Errorf("container runs %q, want %q and the config's path", cmd, entrypointPrefix)
	}
	path := cmd[len(entrypointPrefix)]
	for _, m := range c.VolumeMounts {
		key := filepath.Base(path)
		switch {
		case m.SubPath == "" && m.MountPath == filepath.Dir(path):
		case m.SubPath != "" && m.MountPath == path:
			key = m.SubPath
		default:
			continue
		}
		v := volume(d, m.Name)
		if v == nil || v.ConfigMap == nil || len(v.ConfigMap.Items) > 0 {
			return nil, nil, fmt.Errorf("%s is mounted from volume %s, want a whole ConfigMap", path, m.Name)
		}
		sc, ok := b.configs[v.ConfigMap.Name]
		if !ok || sc.key != key {
			return nil, nil, fmt.Errorf("%s is key %s of ConfigMap %s, which no configMapGenerator makes", path, key, v.ConfigMap.Name)
		}
		return c, sc.cfg, nil
	}
	return nil, nil, fmt.Errorf("no volume is mounted where the config %s is", path)
}

func volume(d *appsv1.Deployment, name string) *corev1.Volume {
	for i, v := range d.Spec.Template.Spec.Volumes {
		if v.Name == name {
			return &d.Spec.Template.Spec.Volumes[i]
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
// to a port of c; -1 when it names none.
func containerPort(c *corev1.Container, p intstr.IntOrString) int32 {
	for _, cp := range c.Ports {
		if p.Type == intstr.String && cp.Name == p.StrVal || p.Type == intstr.Int && cp.ContainerPort == p.IntVal {
			return cp.ContainerPort
		}
	}
	return -1
}

func (f *fixture) containerPort(p intstr.IntOrString) int32 { return containerPort(f.c, p) }

// targetPort is a Service port's targetPort, its port when unset (as
// Kubernetes defaults it).
func targetPort(p corev1.ServicePort) intstr.IntOrString {
	if p.TargetPort.Type == intstr.Int && p.TargetPort.IntVal == 0 {
		return intstr.FromInt32(p.Port)
	}
	return p.TargetPort
}

// tokenRequired says whether gatehouse refuses to start without an admin
// token: its admin listener is not on loopback and the file has none.
func (f *fixture) tokenRequired() bool {
	return !config.LoopbackOnly(f.cfg.Admin) && f.cfg.AdminToken == ""
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

func podLabels(d *appsv1.Deployment) labels.Set { return labels.Set(d.Spec.Template.Labels) }

// matches reports whether a label selector (a Deployment's, a
// PodDisruptionBudget's) selects d's pods; an empty one selects nothing
// here, though Kubernetes reads it as everything.
func matches(sel *metav1.LabelSelector, d *appsv1.Deployment) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && !s.Empty() && s.Matches(podLabels(d))
}

// selects reports whether a Service selects d's pods.
func selects(s *corev1.Service, d *appsv1.Deployment) bool {
	return len(s.Spec.Selector) > 0 && labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels(d))
}

// services are the Services that select f's Deployment's pods.
func (f *fixture) services() []*corev1.Service {
	var out []*corev1.Service
	for _, s := range f.b.services {
		if selects(s, f.d) {
			out = append(out, s)
		}
	}
	return out
}

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
				grace, killWait+adminWait+finishWait, want)
		}
	}},
	{"data_dir writable", func(f *fixture, e *errs) {
		for _, m := range f.c.VolumeMounts {
			rel, err := filepath.Rel(m.MountPath, f.cfg.DataDir)
			if err != nil || rel == ".." || strings.HasPrefix(rel, "../") || m.ReadOnly {
				continue
			}
			if v := volume(f.d, m.Name); v != nil && (v.EmptyDir != nil || v.PersistentVolumeClaim != nil || v.Ephemeral != nil) {
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
		if !matches(f.d.Spec.Selector, f.d) {
			e.add("Deployment %s selector %v does not select its own pods %v", f.d.Name, f.d.Spec.Selector, podLabels(f.d))
		}
		for _, s := range f.b.services {
			if !slices.ContainsFunc(f.b.deployments, func(d *appsv1.Deployment) bool { return selects(s, d) }) {
				e.add("Service %s selector %v selects no Deployment's pods", s.Name, s.Spec.Selector)
			}
		}
		if len(f.services()) == 0 {
			e.add("no Service selects Deployment %s's pods %v", f.d.Name, podLabels(f.d))
		}
		covered := false
		for _, p := range f.b.pdbs {
			if !slices.ContainsFunc(f.b.deployments, func(d *appsv1.Deployment) bool { return matches(p.Spec.Selector, d) }) {
				e.add("PodDisruptionBudget %s selector %v selects no Deployment's pods", p.Name, p.Spec.Selector)
			}
			covered = covered || matches(p.Spec.Selector, f.d)
		}
		if !covered {
			e.add("no PodDisruptionBudget covers Deployment %s's pods", f.d.Name)
		}
		for _, h := range f.b.hpas {
			r := h.Spec.ScaleTargetRef
			if r.APIVersion != "apps/v1" || r.Kind != "Deployment" ||
				!slices.ContainsFunc(f.b.deployments, func(d *appsv1.Deployment) bool { return d.Name == r.Name }) {
				e.add("HorizontalPodAutoscaler %s scales %s %s %s, no Deployment here", h.Name, r.APIVersion, r.Kind, r.Name)
			}
		}
	}},
	{"service target ports", func(f *fixture, e *errs) {
		for _, s := range f.services() {
			for _, p := range s.Spec.Ports {
				if tp := targetPort(p); f.containerPort(tp) < 0 {
					e.add("Service %s port %s: targetPort %s is no port of Deployment %s's container", s.Name, p.Name, tp.String(), f.d.Name)
				}
			}
		}
	}},
	{"service monitor", func(f *fixture, e *errs) {
		for _, m := range f.b.monitors {
			checkMonitor(f, m, e)
		}
	}},
	{"hpa", func(f *fixture, e *errs) {
		for _, h := range f.b.hpas {
			if h.Spec.ScaleTargetRef.Name != f.d.Name {
				continue
			}
			for _, m := range h.Spec.Metrics {
				if m.Pods == nil {
					e.add("HorizontalPodAutoscaler %s: metric of type %s; the rules here make per-pod metrics", h.Name, m.Type)
					continue
				}
				checkPodsMetric(f, m.Pods.Metric.Name, e)
			}
		}
	}},
	{"dns upstreams", func(f *fixture, e *errs) {
		for _, name := range f.cfg.Order {
			for _, u := range f.cfg.Apps[name].Upstreams {
				if err := checkDNSUpstream(f, f.cfg.Apps[name], u); err != nil {
					e.add("app %s: upstream %s: %v", name, u, err)
				}
			}
		}
	}},
}

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
	if !selects(svc, f.d) {
		return // another Deployment's
	}
	for _, ep := range m.Spec.Endpoints {
		i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == ep.Port })
		if i < 0 {
			e.add("ServiceMonitor %s: port %q is not a port of Service %s", m.Metadata.Name, ep.Port, svc.Name)
			continue
		}
		if got := f.containerPort(targetPort(svc.Spec.Ports[i])); got != portOf(f.cfg.Admin) {
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

// deployments are the gatehouse Deployments checked, each in the
// kustomization that applies it with everything it relies on.
var deployments = []struct{ dir, name string }{
	{filepath.Join(k8sDir, "autoscaling"), "gatehouse-demo"},
	{filepath.Join(k8sDir, "edge"), "gatehouse-edge"},
}

// The manifests agree with the gatehouse config they ship, the image they
// run, and the metrics gatehouse exports.
func TestManifestsMatchConfig(t *testing.T) {
	for _, dep := range deployments {
		t.Run(dep.name, func(t *testing.T) {
			f := newFixture(t, dep.dir, dep.name)
			for _, c := range checks {
				t.Run(c.name, func(t *testing.T) {
					var e errs
					c.run(f, &e)
					for _, err := range e {
						t.Error(err)
					}
				})
			}
		})
	}
}

// Each kustomization applies on its own (kubectl apply -k): the base on
// any cluster (no CRD kinds in it), the others on top of it; the
// autoscaling one has its ServiceMonitor and HorizontalPodAutoscaler; and
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
	auto, err := loadKustomization(filepath.Join(k8sDir, "autoscaling"))
	if err != nil {
		t.Fatal(err)
	}
	if len(auto.monitors) == 0 || len(auto.hpas) == 0 {
		t.Errorf("autoscaling has %d ServiceMonitors and %d HorizontalPodAutoscalers, want both", len(auto.monitors), len(auto.hpas))
	}
	read := append(auto.files, filepath.Join(k8sDir, "autoscaling", adapterRules))
	edge, err := loadKustomization(filepath.Join(k8sDir, "edge"))
	if err != nil {
		t.Fatal(err)
	}
	read = append(read, edge.files...)
	all, err := yamlFiles(k8sDir)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(unique(all), unique(read)); d != "" {
		t.Errorf("YAML files under %s that no check reads, or missing (-on disk +read):\n%s", k8sDir, d)
	}
}

// The cross-checks bite: each mutation of a good fixture breaks one
// invariant, and the check for it fails.
func TestCrossChecksReject(t *testing.T) {
	demo := deployments[0]
	tests := []struct {
		name, check string
		mutate      func(f *fixture)
		dep         string // the Deployment mutated; demo's when ""
	}{
		{"grace period too short", "grace period", func(f *fixture) {
			f.d.Spec.Template.Spec.TerminationGracePeriodSeconds = new(int64(30))
		}, ""},
		{"grace period by the 2× rule only", "grace period", func(f *fixture) {
			g := int64((minGracePeriod(f.cfg) - maxStop(f.cfg)) / time.Second)
			f.d.Spec.Template.Spec.TerminationGracePeriodSeconds = &g
		}, ""},
		{"liveness probes the app", "probes", func(f *fixture) { f.c.LivenessProbe.HTTPGet.Path = "/healthz" }, ""},
		{"readiness without the prefix", "probes", func(f *fixture) { f.c.ReadinessProbe.HTTPGet.Path = "/readyz" }, ""},
		{"health on the public port without health_prefix", "probes", func(f *fixture) { f.cfg.HealthPrefix = "" }, ""},
		{"startup budget below start_timeout", "startup budget", func(f *fixture) { f.c.StartupProbe.FailureThreshold = 5 }, ""},
		{"admin port moved", "container ports", func(f *fixture) { f.cfg.Admin = ":9902" }, ""},
		{"admin token not passed", "admin token", func(f *fixture) { f.c.Env = nil }, ""},
		{"data_dir off the emptyDir", "data_dir writable", func(f *fixture) { f.cfg.DataDir = "/srv/gatehouse" }, ""},
		{"writable root filesystem", "security", func(f *fixture) { f.c.SecurityContext.ReadOnlyRootFilesystem = new(false) }, ""},
		{"no memory limit", "resources", func(f *fixture) { delete(f.c.Resources.Limits, corev1.ResourceMemory) }, ""},
		{"Service selects other pods", "selectors", func(f *fixture) {
			f.b.services[0].Spec.Selector = map[string]string{"app.kubernetes.io/name": "other"}
		}, ""},
		{"PDB selects other pods", "selectors", func(f *fixture) {
			f.b.pdbs[0].Spec.Selector.MatchLabels = map[string]string{"app": "other"}
		}, ""},
		{"Service targets a port the container lacks", "service target ports", func(f *fixture) {
			f.b.services[0].Spec.Ports[0].TargetPort = intstr.FromString("htp")
		}, ""},
		{"ServiceMonitor without the token", "service monitor", func(f *fixture) {
			f.b.monitors[0].Spec.Endpoints[0].Authorization = nil
		}, ""},
		{"HPA metric no rule makes", "hpa", func(f *fixture) {
			f.b.hpas[0].Spec.Metrics[0].Pods.Metric.Name = "gatehouse_nonesuch"
		}, ""},
		{"adapter rule on a metric gatehouse does not export", "hpa", func(f *fixture) {
			f.rules.Rules[0].MetricsQuery += " + sum(gatehouse_inflight_requests_total)"
		}, ""},
		{"edge: upstream names no Service", "dns upstreams", func(f *fixture) {
			f.cfg.Apps["demo"].Upstreams = []string{"dns://web-headless.default.svc.cluster.local:8080"}
		}, "gatehouse-edge"},
		{"edge: upstream Service not headless", "dns upstreams", func(f *fixture) {
			for _, s := range f.b.services {
				s.Spec.ClusterIP = ""
			}
		}, "gatehouse-edge"},
		{"edge: upstream on the admin port", "dns upstreams", func(f *fixture) {
			f.cfg.Apps["demo"].Upstreams = []string{"dns://gatehouse-demo-headless.default.svc.cluster.local:9901"}
		}, "gatehouse-edge"},
		{"edge: probes too slow to notice a draining pod within its shutdown_delay", "dns upstreams", func(f *fixture) {
			f.cfg.Apps["demo"].Health.UnhealthyThreshold = 3
		}, "gatehouse-edge"},
		{"edge: SRV upstream on a port name the Service lacks", "dns upstreams", func(f *fixture) {
			f.cfg.Apps["demo"].Upstreams = []string{"dns+srv://_admin._tcp.gatehouse-demo-headless.default.svc.cluster.local"}
		}, "gatehouse-edge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir, name := demo.dir, demo.name
			if tt.dep != "" {
				dir, name = deployments[1].dir, tt.dep
			}
			f := newFixture(t, dir, name)
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

// checkDNSUpstream checks that an external pool's dns:// or dns+srv://
// entry names a headless Service here (NAME.NAMESPACE.svc.cluster.local,
// or _PORTNAME._tcp. before it) whose port reaches the public listener of
// the gatehouse in the pods it selects, and that app's probes take a pod
// that drains out of the pool within that gatehouse's shutdown_delay.
// Other entries are not checked.
func checkDNSUpstream(f *fixture, app *config.App, entry string) error {
	var host, portName string
	var port int32 = -1
	if rest, ok := strings.CutPrefix(entry, "dns+srv://"); ok {
		labels := strings.SplitN(rest, ".", 3)
		if len(labels) < 3 || labels[1] != "_tcp" {
			return fmt.Errorf("want dns+srv://_PORTNAME._tcp.SERVICE.NAMESPACE.svc.cluster.local")
		}
		host, portName = labels[2], strings.TrimPrefix(labels[0], "_")
	} else if rest, ok := strings.CutPrefix(entry, "dns://"); ok {
		h, p, err := net.SplitHostPort(rest)
		if err != nil {
			return err
		}
		host, port = h, portOf(":"+p)
	} else {
		return nil
	}
	svcName, ns, ok := strings.Cut(strings.TrimSuffix(host, "."), ".")
	if !ok || !strings.HasSuffix(ns, ".svc.cluster.local") {
		return fmt.Errorf("want a Service's cluster name, SERVICE.NAMESPACE.svc.cluster.local")
	}
	i := slices.IndexFunc(f.b.services, func(s *corev1.Service) bool { return s.Name == svcName })
	if i < 0 {
		return fmt.Errorf("no Service %s here", svcName)
	}
	s := f.b.services[i]
	if s.Spec.ClusterIP != corev1.ClusterIPNone {
		return fmt.Errorf("Service %s is not headless (clusterIP: None): its name has one virtual IP, not a record per pod", svcName)
	}
	j := slices.IndexFunc(s.Spec.Ports, func(p corev1.ServicePort) bool {
		return portName != "" && p.Name == portName && p.Protocol != corev1.ProtocolUDP || portName == "" && p.Port == port
	})
	if j < 0 {
		want := portName
		if want == "" {
			want = strconv.Itoa(int(port))
		}
		return fmt.Errorf("Service %s has no port %s", svcName, want)
	}
	// A headless Service's records are the pods' own addresses: the
	// entry's port must be the container's, not translated.
	sp := s.Spec.Ports[j]
	for _, d := range f.b.deployments {
		if !selects(s, d) {
			continue
		}
		c, cfg, err := f.b.gatehouse(d, f.image)
		if err != nil {
			return fmt.Errorf("Deployment %s: %w", d.Name, err)
		}
		got := containerPort(c, targetPort(sp))
		if got != portOf(cfg.Listen) || portName == "" && got != port {
			return fmt.Errorf("Service %s port %d reaches container port %d of Deployment %s, whose gatehouse listens on %s",
				svcName, sp.Port, got, d.Name, cfg.Listen)
		}
		// A pod that drains fails /readyz at once and serves on for its
		// shutdown_delay, then refuses connections: the pool must have
		// let it go by then (its DNS record goes later: the endpoints,
		// CoreDNS's cache, then dns.max_refresh). Probes of a ready
		// member come every interval, +10% jitter.
		h := app.Health
		if notice := time.Duration(h.UnhealthyThreshold) * (h.Interval.D() + h.Interval.D()/10); notice >= cfg.ShutdownDelay.D() {
			return fmt.Errorf("health: %d failed probes every %s take up to %s to take a draining pod out of the pool; Deployment %s's gatehouse serves for only shutdown_delay %s after SIGTERM: lower health.unhealthy_threshold or health.interval",
				h.UnhealthyThreshold, h.Interval.D(), notice, d.Name, cfg.ShutdownDelay.D())
		}
		return nil
	}
	return fmt.Errorf("Service %s selects no Deployment's pods", svcName)
}
