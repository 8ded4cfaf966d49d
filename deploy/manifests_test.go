package deploy_test

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv2 "k8s.io/api/autoscaling/v2"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"

	"github.com/gatehouse/gatehouse/internal/config"
)

// k8sDir holds the manifests; every YAML file under it is one of: a
// kustomization, a resource it lists, a file of its configMapGenerator
// (a gatehouse config) or the Prometheus Adapter's rules.
const (
	k8sDir       = "kubernetes"
	adapterRules = "prometheus-adapter-rules.yaml"
)

// scheme knows the Kubernetes API groups the manifests use; a kind it does
// not know fails to decode rather than being skipped.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{
		appsv1.AddToScheme, corev1.AddToScheme, policyv1.AddToScheme, autoscalingv2.AddToScheme,
	} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	return s
}()

// strictYAML decodes YAML into the typed k8s.io/api objects as the API
// server's strict field validation does: an unknown field, a field in the
// wrong case or a duplicate field is an error, not silently dropped.
var strictYAML = kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
	kjson.SerializerOptions{Yaml: true, Strict: true})

// kustomization is the part of kustomize's Kustomization these manifests
// use. It is decoded with unknown fields refused, so a field used here but
// not listed fails the test rather than being ignored by it.
type kustomization struct {
	APIVersion         string      `yaml:"apiVersion"`
	Kind               string      `yaml:"kind"`
	Resources          []string    `yaml:"resources"`
	ConfigMapGenerator []generator `yaml:"configMapGenerator"`
	Patches            []patch     `yaml:"patches"`
}

// patch is a kustomization's JSON 6902 or strategic-merge patch of the
// objects target selects.
type patch struct {
	Target struct {
		Kind string `yaml:"kind"`
		Name string `yaml:"name"`
	} `yaml:"target"`
	Patch string `yaml:"patch"`
}

type generator struct {
	Name  string   `yaml:"name"`
	Files []string `yaml:"files"`
}

// serviceMonitor is the part of the Prometheus Operator's ServiceMonitor
// (monitoring.coreos.com/v1, a CRD, not in k8s.io/api) that these
// manifests use, with the CRD's field names.
type serviceMonitor struct {
	APIVersion string     `yaml:"apiVersion"`
	Kind       string     `yaml:"kind"`
	Metadata   objectMeta `yaml:"metadata"`
	Spec       struct {
		Selector struct {
			MatchLabels map[string]string `yaml:"matchLabels"`
		} `yaml:"selector"`
		Endpoints []struct {
			Port          string `yaml:"port"`
			Path          string `yaml:"path"`
			Interval      string `yaml:"interval"`
			Authorization *struct {
				Type        string `yaml:"type"`
				Credentials struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"credentials"`
			} `yaml:"authorization"`
		} `yaml:"endpoints"`
	} `yaml:"spec"`
}

type objectMeta struct {
	Name      string            `yaml:"name"`
	Namespace string            `yaml:"namespace"`
	Labels    map[string]string `yaml:"labels"`
}

// adapterConfig is the Prometheus Adapter's --config file: its rules.
type adapterConfig struct {
	Rules []adapterRule `yaml:"rules"`
}

type adapterRule struct {
	SeriesQuery string `yaml:"seriesQuery"`
	Resources   struct {
		Overrides map[string]struct {
			Resource string `yaml:"resource"`
		} `yaml:"overrides"`
	} `yaml:"resources"`
	Name struct {
		Matches string `yaml:"matches"`
		As      string `yaml:"as"`
	} `yaml:"name"`
	MetricsQuery string `yaml:"metricsQuery"`
}

// strictLocal decodes one YAML document into v with yaml.v3, refusing
// unknown fields (and, as yaml.v3 always does, duplicate keys).
func strictLocal(doc []byte, v any) error {
	dec := yaml.NewDecoder(bytes.NewReader(doc))
	dec.KnownFields(true)
	return dec.Decode(v)
}

// bundle is everything a kustomization directory applies, decoded.
type bundle struct {
	deployments []*appsv1.Deployment
	services    []*corev1.Service
	pdbs        []*policyv1.PodDisruptionBudget
	hpas        []*autoscalingv2.HorizontalPodAutoscaler
	monitors    []*serviceMonitor
	// configs are the gatehouse configs by ConfigMap name, each loaded by
	// gatehouse's own loader from the generator's file; key is the
	// file's name, the key inside the ConfigMap.
	configs map[string]shippedConfig
	// files are the YAML files read, for the check that none is left out.
	files []string
}

type shippedConfig struct {
	key string
	cfg *config.Config
}

// decodeObject decodes one YAML document strictly: a ServiceMonitor into
// serviceMonitor, anything else into its k8s.io/api type.
func decodeObject(doc []byte) (any, error) {
	var tm struct {
		APIVersion string `yaml:"apiVersion"`
		Kind       string `yaml:"kind"`
	}
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	gv, err := schema.ParseGroupVersion(tm.APIVersion)
	if err != nil {
		return nil, err
	}
	if gv.Group == "monitoring.coreos.com" {
		if tm.Kind != "ServiceMonitor" || gv.Version != "v1" {
			return nil, fmt.Errorf("%s %s: only ServiceMonitor v1 is checked here", tm.APIVersion, tm.Kind)
		}
		sm := &serviceMonitor{}
		return sm, strictLocal(doc, sm)
	}
	obj, _, err := strictYAML.Decode(doc, nil, nil)
	return obj, err
}

// splitYAML returns the non-empty documents of a multi-document file.
func splitYAML(data []byte) ([][]byte, error) {
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(data)))
	var docs [][]byte
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, err
		}
		if len(bytes.TrimSpace(stripComments(doc))) > 0 {
			docs = append(docs, doc)
		}
	}
}

// stripComments drops comment lines, to tell a document of only comments
// (as before a file's first ---) from a real one.
func stripComments(doc []byte) []byte {
	var out []byte
	for line := range bytes.Lines(doc) {
		if !bytes.HasPrefix(bytes.TrimSpace(line), []byte("#")) {
			out = append(out, line...)
		}
	}
	return out
}

// loadKustomization reads dir/kustomization.yaml and, recursively, what it
// lists, as kubectl apply -k would.
func loadKustomization(dir string) (*bundle, error) {
	b := &bundle{configs: map[string]shippedConfig{}}
	return b, b.load(dir)
}

func (b *bundle) load(dir string) error {
	path := filepath.Join(dir, "kustomization.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b.files = append(b.files, path)
	var k kustomization
	if err := strictLocal(data, &k); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		return fmt.Errorf("%s: %s %s, want kustomize.config.k8s.io/v1beta1 Kustomization", path, k.APIVersion, k.Kind)
	}
	for _, g := range k.ConfigMapGenerator {
		if len(g.Files) != 1 {
			return fmt.Errorf("%s: configMapGenerator %s: want one file, the gatehouse config", path, g.Name)
		}
		file := filepath.Join(dir, g.Files[0])
		cfg, err := config.Load(file)
		if err != nil {
			return fmt.Errorf("%s: configMapGenerator %s: %w", path, g.Name, err)
		}
		b.files = append(b.files, file)
		b.configs[g.Name] = shippedConfig{key: filepath.Base(g.Files[0]), cfg: cfg}
	}
	for _, r := range k.Resources {
		res := filepath.Join(dir, r)
		if fi, err := os.Stat(res); err == nil && fi.IsDir() {
			if err := b.load(res); err != nil {
				return err
			}
			continue
		}
		if err := b.loadFile(res); err != nil {
			return err
		}
	}
	return nil
}

func (b *bundle) loadFile(path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	b.files = append(b.files, path)
	docs, err := splitYAML(data)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	for i, doc := range docs {
		obj, err := decodeObject(doc)
		if err != nil {
			return fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
		if err := b.add(obj); err != nil {
			return fmt.Errorf("%s: document %d: %w", path, i+1, err)
		}
	}
	return nil
}

func (b *bundle) add(obj any) error {
	switch o := obj.(type) {
	case *appsv1.Deployment:
		b.deployments = append(b.deployments, o)
	case *corev1.Service:
		b.services = append(b.services, o)
	case *policyv1.PodDisruptionBudget:
		b.pdbs = append(b.pdbs, o)
	case *autoscalingv2.HorizontalPodAutoscaler:
		b.hpas = append(b.hpas, o)
	case *serviceMonitor:
		b.monitors = append(b.monitors, o)
	default:
		return fmt.Errorf("%T: no check for this kind here; add one", obj)
	}
	return nil
}

// yamlFiles lists every YAML file under dir.
func yamlFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			out = append(out, p)
		}
		return err
	})
	return out, err
}

// loadAdapterRules reads the Prometheus Adapter's rules strictly.
func loadAdapterRules(path string) (*adapterConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c adapterConfig
	if err := strictLocal(data, &c); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// unique sorts and deduplicates.
func unique(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return slices.Compact(s)
}
