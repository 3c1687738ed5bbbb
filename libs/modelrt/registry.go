package modelrt

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/recsys/recsys/libs/retrieval"
)

// State is where a model version is in its life.
type State int

// States.
const (
	Loading State = iota + 1
	Warming
	Ready
	Failed
	Unloaded
)

func (s State) String() string {
	return [...]string{"", "loading", "warming", "ready", "failed", "unloaded"}[s]
}

// Version is one model version. Score may be called concurrently, also
// while the registry unloads it (it then answers ErrUnloaded).
type Version struct {
	Name, Version, Dir string
	Meta               *Metadata
	// Retrieval is the version's retrieval index (retrieval.FileName in
	// its folder), nil when it has none: it then serves from trending.
	Retrieval *retrieval.Index

	mu       sync.RWMutex // Score holds it shared; load and unload exclusively
	session  *Session
	state    State
	err      string
	warm     []int
	warmTook time.Duration
	modTime  time.Time
	infer    prometheus.Observer
	// idleSince is when nothing last started routing to the version (zero
	// while something does); it is unloaded after RegistryConfig.UnloadGrace.
	idleSince time.Time
}

// ErrUnloaded means the version was unloaded; the caller should pick the
// registry's current choice again.
var ErrUnloaded = errors.New("model version unloaded")

// Score runs the model on rows (see Session.Run).
func (v *Version) Score(rows, out []float32) ([]float32, error) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.session == nil {
		return nil, ErrUnloaded
	}
	start := time.Now()
	out, err := v.session.Run(rows, out)
	if v.infer != nil {
		v.infer.Observe(time.Since(start).Seconds())
	}
	return out, err
}

// Provider is the execution provider the version runs on ("" until loaded).
func (v *Version) Provider() Provider {
	v.mu.RLock()
	defer v.mu.RUnlock()
	if v.session == nil {
		return ""
	}
	return v.session.Provider()
}

// Info is a snapshot of a version for ListModels.
type Info struct {
	Name, Version, Dir string
	Meta               *Metadata
	State              State
	Provider           Provider
	FallbackReason     string
	Error              string
	WarmupBatchSizes   []int
	WarmupTook         time.Duration
}

func (v *Version) info() Info {
	v.mu.RLock()
	defer v.mu.RUnlock()
	in := Info{Name: v.Name, Version: v.Version, Dir: v.Dir, Meta: v.Meta, State: v.state, Error: v.err, WarmupBatchSizes: v.warm, WarmupTook: v.warmTook}
	if v.session != nil {
		in.Provider, in.FallbackReason = v.session.Provider(), v.session.FallbackReason
	}
	return in
}

// RegistryConfig configures a Registry.
type RegistryConfig struct {
	Root     string // MODEL_ROOT
	Name     string // the model served: Root/Name/<version>/
	Session  SessionOptions
	Warmup   []int         // batch sizes run before a version is ready
	Interval time.Duration // how often Root is scanned
	// UnloadGrace is how long a ready version nothing routes to stays
	// loaded (in-flight requests, an experiment file about to pin it).
	UnloadGrace time.Duration
}

// Registry watches Root/Name for versions, loads and warms new ones,
// serves the newest ready one by default, and unloads what nothing routes
// to. Its methods are safe for concurrent use; Run owns the scanning.
type Registry struct {
	cfg    RegistryConfig
	logger *slog.Logger
	// pinned lists versions that must stay loaded (experiment arms).
	pinned func() []string

	mu       sync.Mutex
	versions map[string]*Version
	latest   *Version

	infer     *prometheus.HistogramVec
	providerG *prometheus.GaugeVec
}

// NewRegistry returns a registry; pinned (may be nil) names the versions
// experiments route to.
func NewRegistry(cfg RegistryConfig, pinned func() []string, logger *slog.Logger, reg prometheus.Registerer) *Registry {
	if pinned == nil {
		pinned = func() []string { return nil }
	}
	r := &Registry{cfg: cfg, pinned: pinned, logger: logger, versions: map[string]*Version{},
		infer: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "recsys_model_inference_seconds",
			Help:    "ONNX Runtime time per batch, by model version and execution provider.",
			Buckets: []float64{.00005, .0001, .00025, .0005, .001, .0025, .005, .01, .025, .05},
		}, []string{"version", "provider"}),
		providerG: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "recsys_model_loaded",
			Help: "1 for each loaded model version, labelled with the execution provider it runs on.",
		}, []string{"version", "provider"}),
	}
	reg.MustRegister(r.infer, r.providerG)
	return r
}

// Run scans until ctx is done, then unloads everything.
func (r *Registry) Run(ctx context.Context) error {
	t := time.NewTicker(r.cfg.Interval)
	defer t.Stop()
	for {
		r.Scan()
		select {
		case <-ctx.Done():
			r.mu.Lock()
			for _, v := range r.versions {
				r.unload(v)
			}
			r.mu.Unlock()
			return nil
		case <-t.C:
		}
	}
}

// Scan looks at the registry folder once: loads new or changed versions,
// forgets removed ones, unloads what nothing routes to.
func (r *Registry) Scan() {
	dir := filepath.Join(r.cfg.Root, r.cfg.Name)
	entries, err := os.ReadDir(dir)
	if err != nil && !os.IsNotExist(err) {
		r.logger.Warn("read model registry", "dir", dir, "err", err)
	}
	present := map[string]time.Time{}
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		mod, ok := modTime(filepath.Join(dir, e.Name()))
		if ok {
			present[e.Name()] = mod
		}
	}
	r.mu.Lock()
	for name, v := range r.versions {
		if _, ok := present[name]; !ok {
			r.unload(v)
			delete(r.versions, name)
			r.logger.Info("model version removed", "version", name)
		}
	}
	var todo []*Version
	pinned := r.pinned()
	for name, mod := range present {
		v := r.versions[name]
		switch {
		case v == nil || !v.modTime.Equal(mod):
			v = &Version{Name: r.cfg.Name, Version: name, Dir: filepath.Join(dir, name), modTime: mod, state: Loading}
			if old := r.versions[name]; old != nil {
				r.unload(old)
			}
			r.versions[name] = v
			todo = append(todo, v)
		case v.state == Unloaded && slices.Contains(pinned, name):
			nv := &Version{Name: r.cfg.Name, Version: name, Dir: v.Dir, modTime: mod, state: Loading}
			r.versions[name] = nv
			todo = append(todo, nv)
		}
	}
	r.mu.Unlock()

	sort.Slice(todo, func(i, j int) bool { return todo[i].Version < todo[j].Version })
	for _, v := range todo {
		r.load(v)
	}

	r.mu.Lock()
	defer r.mu.Unlock()
	r.latest = nil
	for _, v := range r.versions {
		if v.state == Ready && (r.latest == nil || newer(v, r.latest)) {
			r.latest = v
		}
	}
	now := time.Now()
	for _, v := range r.versions {
		if v.state != Ready {
			continue
		}
		if v == r.latest || slices.Contains(pinned, v.Version) {
			v.idleSince = time.Time{}
			continue
		}
		if v.idleSince.IsZero() {
			v.idleSince = now
		}
		if now.Sub(v.idleSince) >= r.cfg.UnloadGrace {
			r.unload(v)
			r.logger.Info("model version unloaded: no experiment routes to it", "version", v.Version, "idle", now.Sub(v.idleSince).String())
		}
	}
}

func modTime(dir string) (time.Time, bool) {
	var latest time.Time
	for _, f := range []string{"model.onnx", "metadata.json"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			return time.Time{}, false
		}
		if st.ModTime().After(latest) {
			latest = st.ModTime()
		}
	}
	return latest, true
}

// newer orders versions by creation time, then by name.
func newer(a, b *Version) bool {
	if !a.Meta.CreatedAt.Equal(b.Meta.CreatedAt) {
		return a.Meta.CreatedAt.After(b.Meta.CreatedAt)
	}
	return a.Version > b.Version
}

// load reads, checks, opens and warms v; on any failure v is Failed and
// nothing else changes.
func (r *Registry) load(v *Version) {
	fail := func(err error) {
		v.mu.Lock()
		v.state, v.err = Failed, err.Error()
		v.mu.Unlock()
		r.logger.Error("model version failed to load; the previous keeps serving", "version", v.Version, "err", err)
	}
	meta, err := ReadMetadata(filepath.Join(v.Dir, "metadata.json"))
	if err != nil {
		fail(err)
		return
	}
	if meta.Version != "" && meta.Version != v.Version {
		fail(fmt.Errorf("metadata.json says version %q but the folder is %q", meta.Version, v.Version))
		return
	}
	model := filepath.Join(v.Dir, "model.onnx")
	if err := CheckIO(model, meta); err != nil {
		fail(err)
		return
	}
	var index *retrieval.Index
	if path := filepath.Join(v.Dir, retrieval.FileName); fileExists(path) {
		if index, err = retrieval.Read(path); err != nil {
			fail(err)
			return
		}
	}
	s, err := OpenSession(model, meta.Input, meta.Output, len(meta.Features), r.cfg.Session)
	if err != nil {
		fail(err)
		return
	}
	if s.FallbackReason != "" {
		r.logger.Warn("execution provider auto chose the CPU", "version", v.Version, "reason", s.FallbackReason)
	}
	v.mu.Lock()
	v.Meta, v.Retrieval, v.session, v.state = meta, index, s, Warming
	v.infer = r.infer.WithLabelValues(v.Version, string(s.Provider()))
	v.mu.Unlock()

	start := time.Now()
	var rows, out []float32
	for _, n := range r.cfg.Warmup {
		rows = slices.Grow(rows[:0], n*len(meta.Features))[:n*len(meta.Features)]
		for i := range rows {
			rows[i] = meta.Features[i%len(meta.Features)].Default
		}
		if out, err = s.Run(rows, out); err != nil {
			v.mu.Lock()
			v.session = nil
			v.mu.Unlock()
			s.Close()
			fail(fmt.Errorf("warm-up at batch %d: %w", n, err))
			return
		}
	}
	v.mu.Lock()
	v.state, v.warm, v.warmTook = Ready, slices.Clone(r.cfg.Warmup), time.Since(start)
	v.mu.Unlock()
	r.providerG.WithLabelValues(v.Version, string(s.Provider())).Set(1)
	r.logger.Info("model version ready", "version", v.Version, "provider", s.Provider(), "warmup", v.warmTook.String())
}

// unload closes v's session once no Score is running. Callers hold r.mu.
func (r *Registry) unload(v *Version) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.session != nil {
		r.providerG.DeleteLabelValues(v.Version, string(v.session.Provider()))
		v.session.Close()
		v.session = nil
	}
	if v.state == Ready || v.state == Warming {
		v.state = Unloaded
	}
}

// ErrNoModel means no version is ready.
var ErrNoModel = errors.New("no model version is ready")

// Latest is the newest ready version.
func (r *Registry) Latest() (*Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.latest == nil {
		return nil, ErrNoModel
	}
	return r.latest, nil
}

// NotFoundError names a version that is not ready, and those that are.
type NotFoundError struct {
	Version string
	Ready   []string
}

func (e *NotFoundError) Error() string {
	return fmt.Sprintf("model version %q is not loaded; ready versions: [%s]", e.Version, strings.Join(e.Ready, ", "))
}

// Get returns a ready version by name.
func (r *Registry) Get(version string) (*Version, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if v := r.versions[version]; v != nil && v.state == Ready {
		return v, nil
	}
	var ready []string
	for name, v := range r.versions {
		if v.state == Ready {
			ready = append(ready, name)
		}
	}
	sort.Strings(ready)
	return nil, &NotFoundError{Version: version, Ready: ready}
}

// List returns every known version, sorted by name.
func (r *Registry) List() []Info {
	r.mu.Lock()
	vs := make([]*Version, 0, len(r.versions))
	for _, v := range r.versions {
		vs = append(vs, v)
	}
	r.mu.Unlock()
	out := make([]Info, len(vs))
	for i, v := range vs {
		out[i] = v.info()
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// Ready is a readiness check: some version is ready.
func (r *Registry) Ready(context.Context) error {
	_, err := r.Latest()
	return err
}
