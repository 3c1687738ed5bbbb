package manifeststest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	rolloutsv1 "github.com/argoproj/argo-rollouts/pkg/apis/rollouts/v1alpha1"
	wfv1 "github.com/argoproj/argo-workflows/v3/pkg/apis/workflow/v1alpha1"
	argotemplate "github.com/argoproj/argo-workflows/v3/util/template"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"
	knservingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	networkingapi "istio.io/api/networking/v1alpha3"

	"github.com/recsys/recsys/libs/experiment"
)

// The names the rollout is built from: the ranking subsets of
// istio/destinationrules.yaml and the first-model Job of deploy/base.
const (
	stableSubset = "stable"
	canarySubset = "canary"
	firstModel   = "first-model"
	// warmSeconds is what ranking's startup probe allows beyond the
	// first-model Job's deadline: loading and warming the model.
	warmSeconds = 180
)

// rolloutRefErrors checks a Rollout against its build: its pod template is
// a Deployment of the build that sets no replicas (the Rollout scales it
// down, the HPA owns the count), its selector picks that template's pods,
// and every AnalysisTemplate it runs is there with every argument given.
func rolloutRefErrors(objs []object, r *rolloutsv1.Rollout) []error {
	var errs []error
	ref := r.Spec.WorkloadRef
	if ref == nil || ref.APIVersion != "apps/v1" || ref.Kind != "Deployment" {
		return []error{fmt.Errorf("workloadRef %+v: want an apps/v1 Deployment", ref)}
	}
	d := named[*appsv1.Deployment](objs, ref.Name)
	if d == nil {
		return []error{fmt.Errorf("workloadRef: no Deployment %s in the build", ref.Name)}
	}
	if d.Spec.Replicas != nil {
		errs = append(errs, fmt.Errorf("Deployment %s sets replicas %d; the Rollout scales it and an HPA owns the count", d.Name, *d.Spec.Replicas))
	}
	if sel := r.Spec.Selector; sel == nil || !labels.SelectorFromSet(sel.MatchLabels).Matches(labels.Set(d.Spec.Template.Labels)) || len(sel.MatchLabels) == 0 {
		errs = append(errs, fmt.Errorf("selector %v does not pick Deployment %s's pods %v", sel, d.Name, d.Spec.Template.Labels))
	}
	c := r.Spec.Strategy.Canary
	if c == nil || c.Analysis == nil {
		return append(errs, fmt.Errorf("no canary strategy with background analysis"))
	}
	given := map[string]bool{}
	for _, a := range c.Analysis.Args {
		given[a.Name] = true
	}
	for _, ref := range c.Analysis.Templates {
		at := named[*rolloutsv1.AnalysisTemplate](objs, ref.TemplateName)
		if at == nil || ref.ClusterScope {
			errs = append(errs, fmt.Errorf("analysis template %s is not an AnalysisTemplate of the build", ref.TemplateName))
			continue
		}
		for _, arg := range at.Spec.Args {
			if arg.Value == nil && arg.ValueFrom == nil && !given[arg.Name] {
				errs = append(errs, fmt.Errorf("analysis template %s: argument %s is given no value", at.Name, arg.Name))
			}
		}
	}
	return errs
}

// rankingRouteErrors checks a route to ranking: all of it to the stable
// subset and none to canary (Argo Rollouts moves the weights while a
// rollout runs; the repository never pins a split), both on one named
// port, and a copy mirrored to the canary on that port.
func rankingRouteErrors(r *networkingapi.HTTPRoute) []error {
	var errs []error
	w := map[string]int32{}
	port := uint32(0)
	for _, d := range r.Route {
		if host(d.Destination.Host) != "ranking" {
			errs = append(errs, fmt.Errorf("destination %s beside ranking's", d.Destination.Host))
		}
		w[d.Destination.Subset] = d.Weight
		if port == 0 {
			port = d.Destination.GetPort().GetNumber()
		}
		if d.Destination.GetPort().GetNumber() != port || port == 0 {
			errs = append(errs, fmt.Errorf("destinations on ports %d and %d: want one named port", port, d.Destination.GetPort().GetNumber()))
		}
	}
	if len(r.Route) != 2 || w[stableSubset] != 100 || w[canarySubset] != 0 {
		errs = append(errs, fmt.Errorf("weights %v, want %s=100 and %s=0 (Argo Rollouts owns the split)", w, stableSubset, canarySubset))
	}
	if m := r.Mirror; m == nil || host(m.Host) != "ranking" || m.Subset != canarySubset || m.GetPort().GetNumber() != port {
		errs = append(errs, fmt.Errorf("mirror %v, want ranking subset %s on port %d", m, canarySubset, port))
	}
	return errs
}

// TestRolloutOwnsEveryRankingRoute: every route to ranking, in the mesh
// and at the gateway, has the shape Argo Rollouts can drive, and the
// Rollout of each build that has one drives exactly those routes, through
// the DestinationRule's stable and canary subsets, in the steps 5, 25, 50,
// 100 with the analysis running from the first.
func TestRolloutOwnsEveryRankingRoute(t *testing.T) {
	istio := build(t, istioDir)
	routes := map[string]bool{}
	for _, vs := range all[*istionetworking.VirtualService](istio) {
		for _, r := range vs.Spec.Http {
			if !slices.ContainsFunc(r.Route, func(d *networkingapi.HTTPRouteDestination) bool { return host(d.Destination.Host) == "ranking" }) {
				continue
			}
			routes[vs.Name+"/"+r.Name] = true
			for _, err := range rankingRouteErrors(r) {
				t.Errorf("VirtualService %s route %q: %v", vs.Name, r.Name, err)
			}
		}
	}
	if len(routes) < 2 {
		t.Fatalf("routes to ranking %v: want the mesh's and the gateway's", sortedKeys(routes))
	}
	for _, b := range meshBuilds {
		rs := all[*rolloutsv1.Rollout](build(t, b))
		if len(rs) == 0 {
			if b != dev {
				t.Errorf("%s: no Rollout: the binary canary needs one", b)
			}
			continue
		}
		c := rs[0].Spec.Strategy.Canary
		if c == nil || c.TrafficRouting == nil || c.TrafficRouting.Istio == nil {
			t.Fatalf("%s: Rollout %s routes no Istio traffic", b, rs[0].Name)
		}
		owned := map[string]bool{}
		for _, v := range c.TrafficRouting.Istio.VirtualServices {
			for _, r := range v.Routes {
				owned[v.Name+"/"+r] = true
			}
		}
		if got, want := sortedKeys(owned), sortedKeys(routes); !slices.Equal(got, want) {
			t.Errorf("%s: Rollout %s drives routes %v; the routes to ranking are %v", b, rs[0].Name, got, want)
		}
		dr := c.TrafficRouting.Istio.DestinationRule
		if dr == nil || dr.StableSubsetName != stableSubset || dr.CanarySubsetName != canarySubset ||
			named[*istionetworking.DestinationRule](istio, dr.Name) == nil {
			t.Errorf("%s: Rollout %s destinationRule %+v, want %s with subsets %s and %s", b, rs[0].Name, dr, "ranking", stableSubset, canarySubset)
		}
		var weights []int32
		for i, s := range c.Steps {
			if s.SetWeight != nil {
				weights = append(weights, *s.SetWeight)
				if i+1 >= len(c.Steps) || c.Steps[i+1].Pause == nil {
					t.Errorf("%s: Rollout step %d (weight %d) is not followed by a pause: the analysis gets no time", b, i, *s.SetWeight)
				}
			}
		}
		if !slices.Equal(weights, []int32{5, 25, 50, 100}) {
			t.Errorf("%s: Rollout weights %v, want 5, 25, 50, 100", b, weights)
		}
		if a := c.Analysis; a == nil || a.StartingStep == nil || *a.StartingStep > 1 ||
			!slices.ContainsFunc(a.Args, func(arg rolloutsv1.AnalysisRunArgument) bool {
				return arg.ValueFrom != nil && arg.ValueFrom.PodTemplateHashValue != nil && *arg.ValueFrom.PodTemplateHashValue == rolloutsv1.Latest
			}) {
			t.Errorf("%s: Rollout analysis %+v: want it from the first step, given the canary's pod template hash", b, a)
		}
	}
}

// TestAnalysesReadRealSeries: every PromQL query of the canary analyses
// (the binary canary's AnalysisTemplate, the model canary's AnalysisRun)
// names metrics the services register, judges with a success and a
// failure condition, and selects canary pods by a label the ServiceMonitor
// really copies onto the series.
func TestAnalysesReadRealSeries(t *testing.T) {
	registered := registeredMetrics(t)
	objs := build(t, prod)
	var metrics []rolloutsv1.Metric
	for _, at := range all[*rolloutsv1.AnalysisTemplate](objs) {
		metrics = append(metrics, at.Spec.Metrics...)
	}
	run := modelCanaryAnalysis(t, objs)
	metrics = append(metrics, run.Spec.Metrics...)
	if len(metrics) < 7 {
		t.Fatalf("%d analysis metrics, want the binary canary's and the model canary's", len(metrics))
	}
	copied := map[string]bool{"namespace": true}
	for _, sm := range all[*monitoringv1.ServiceMonitor](objs) {
		for _, l := range sm.Spec.PodTargetLabels {
			copied[strings.ReplaceAll(strings.ReplaceAll(l, "-", "_"), ".", "_")] = true
		}
	}
	for _, m := range metrics {
		p := m.Provider.Prometheus
		if p == nil || p.Query == "" || p.Address == "" {
			t.Errorf("metric %s: no Prometheus query and address", m.Name)
			continue
		}
		if m.SuccessCondition == "" || m.FailureCondition == "" {
			t.Errorf("metric %s: want a success and a failure condition", m.Name)
		}
		names, err := promqlMetrics(p.Query)
		if err != nil {
			t.Errorf("metric %s: %v", m.Name, err)
		}
		for _, n := range names {
			if n != "vector" && !registered[n] {
				t.Errorf("metric %s: query reads %s, which no service registers", m.Name, n)
			}
		}
		if strings.Contains(p.Query, "rollouts_pod_template_hash") && !copied["rollouts_pod_template_hash"] {
			t.Errorf("metric %s selects on rollouts_pod_template_hash, which no ServiceMonitor copies from the pods", m.Name)
		}
	}
}

// TestFirstModel: every build a cluster runs has the first-model Job: the
// trainer, run only when the registry is empty (-if-empty), writing the
// version the experiment's control arm pins, on the read-write registry,
// with a deadline; and ranking waits for it: the startup probe (Knative's
// progress deadline) allows the Job's whole deadline plus the warm-up, so
// a fresh cluster's ranking is never restarted while the Job trains.
func TestFirstModel(t *testing.T) {
	for _, b := range appBuilds {
		objs := build(t, b)
		job := named[*batchv1.Job](objs, firstModel)
		if job == nil {
			t.Errorf("%s: no Job %s: a fresh cluster never gets a model", b, firstModel)
			continue
		}
		spec := job.Spec.Template.Spec
		if len(spec.Containers) != 1 || binaryOf(spec.Containers[0].Image) != "trainer" {
			t.Errorf("%s: Job %s does not run the trainer alone", b, firstModel)
			continue
		}
		args := spec.Containers[0].Args
		if !slices.Contains(args, "--if-empty") {
			t.Errorf("%s: Job %s args %q lack --if-empty: every apply would train again", b, firstModel, args)
		}
		version := lastFlag(spec.Containers[0], "version")
		exp := experimentOf(t, b, objs)
		if version == "" || exp.Arms[0].ModelVersion != version {
			t.Errorf("%s: Job %s publishes version %q, but the experiment's control arm pins %q", b, firstModel, version, exp.Arms[0].ModelVersion)
		}
		if job.Spec.ActiveDeadlineSeconds == nil {
			t.Errorf("%s: Job %s has no activeDeadlineSeconds: ranking cannot know how long to wait", b, firstModel)
			continue
		}
		if job.Spec.TTLSecondsAfterFinished == nil {
			t.Errorf("%s: Job %s has no ttlSecondsAfterFinished: its immutable template blocks the next apply", b, firstModel)
		}
		if spec.RestartPolicy == corev1.RestartPolicyAlways || job.Spec.BackoffLimit == nil {
			t.Errorf("%s: Job %s: restartPolicy %s, backoffLimit %v", b, firstModel, spec.RestartPolicy, job.Spec.BackoffLimit)
		}
		if job.Spec.Template.Labels["sidecar.istio.io/inject"] != "false" {
			t.Errorf("%s: Job %s gets an Istio sidecar; it needs no network, and a sidecar would keep the finished pod alive", b, firstModel)
		}
		need := *job.Spec.ActiveDeadlineSeconds + warmSeconds
		servers := 0
		for _, d := range all[*appsv1.Deployment](objs) {
			if d.Spec.Template.Labels["app"] != "ranking" {
				continue
			}
			servers++
			p := d.Spec.Template.Spec.Containers[0].StartupProbe
			if p == nil || int64(p.PeriodSeconds)*int64(p.FailureThreshold) < need {
				t.Errorf("%s: Deployment %s: the startup probe allows %v s, want at least %d (first-model's deadline + %d s to warm)", b, d.Name, probeSeconds(p), need, warmSeconds)
			}
		}
		for _, r := range all[*rolloutsv1.Rollout](objs) {
			if r.Spec.ProgressDeadlineSeconds == nil || int64(*r.Spec.ProgressDeadlineSeconds) < need {
				t.Errorf("%s: Rollout %s: progressDeadlineSeconds %v, want at least %d", b, r.Name, r.Spec.ProgressDeadlineSeconds, need)
			}
		}
		for _, ks := range all[*knservingv1.Service](objs) {
			servers++
			d, err := time.ParseDuration(ks.Spec.Template.Annotations["serving.knative.dev/progress-deadline"])
			if err != nil || int64(d.Seconds()) < need {
				t.Errorf("%s: Knative Service %s: progress deadline %q (%v), want at least %d s", b, ks.Name, ks.Spec.Template.Annotations["serving.knative.dev/progress-deadline"], err, need)
			}
		}
		if servers == 0 {
			t.Errorf("%s: no ranking server", b)
		}
	}
}

func probeSeconds(p *corev1.Probe) any {
	if p == nil {
		return "no probe:"
	}
	return p.PeriodSeconds * p.FailureThreshold
}

// experimentOf decodes the experiment of a build (ConfigMap
// ranking-experiment) strictly and validates it, as ranking does.
func experimentOf(t testing.TB, b string, objs []object) *experiment.Config {
	t.Helper()
	cm := named[*corev1.ConfigMap](objs, "ranking-experiment")
	if cm == nil {
		t.Fatalf("%s: no ConfigMap ranking-experiment", b)
	}
	exp, err := parseExperiment(cm.Data["experiment.json"])
	if err != nil {
		t.Fatalf("%s: ranking-experiment: %v", b, err)
	}
	return exp
}

func parseExperiment(s string) (*experiment.Config, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var exp experiment.Config
	if err := dec.Decode(&exp); err != nil {
		return nil, err
	}
	if err := exp.Validate(); err != nil {
		return nil, err
	}
	return &exp, nil
}

// TestExperimentIsTheOneSplit: in every build the experiment is valid,
// lists control first (users are placed on the arms' cumulative weights
// in order, so a growing treatment keeps its users), and has the arm
// ranking scores mirrored requests with (-shadow-arm), so the mirror tests
// the candidate. The arm split lives only there: the mesh's ranking routes
// carry no split of their own (TestRolloutOwnsEveryRankingRoute) and pick
// no arm (TestMeshNeverPicksAnArm).
func TestExperimentIsTheOneSplit(t *testing.T) {
	fs, err := flagSet("ranking")
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range appBuilds {
		objs := build(t, b)
		exp := experimentOf(t, b, objs)
		if exp.Arms[0].Name != experiment.DefaultControl {
			t.Errorf("%s: the experiment's first arm is %q, want %q first", b, exp.Arms[0].Name, experiment.DefaultControl)
		}
		for _, w := range workloads(t, objs) {
			for _, c := range w.containers {
				if binaryOf(c.Image) != "ranking" {
					continue
				}
				arm := lastFlag(c, "shadow-arm")
				if arm == "" {
					arm = fs.Lookup("shadow-arm").DefValue
				}
				if _, ok := exp.Arm(arm); !ok {
					t.Errorf("%s: %s scores mirrored requests with arm %q, which experiment %s lacks (%v)", b, w.owner, arm, exp.ID, exp.ArmNames())
				}
			}
		}
	}
}

// The model canary of the train-model WorkflowTemplate, rendered: Argo's
// template tags are filled in as Argo would for one run, with the
// experiment live before it ("current").

// argoRender fills in a WorkflowTemplate string with Argo's own template
// engine (simple tags and expressions, with the functions Argo gives
// them), as Argo would for one run with vars, the experiment read before
// the step being current. An unresolved tag is an error.
func argoRender(s string, vars map[string]string, current string) (string, error) {
	env := map[string]any{"steps.read.outputs.parameters.experiment": current, "steps.reread.outputs.parameters.experiment": current}
	for k, v := range vars {
		env[k] = v
	}
	tpl, err := argotemplate.NewTemplate(s)
	if err != nil {
		return "", err
	}
	return tpl.Replace(env, false)
}

// trainModel returns the train-model WorkflowTemplate of a build, its
// templates by name, and the variables of one run named run.
func trainModel(t testing.TB, objs []object, run string) (map[string]*wfv1.Template, map[string]string) {
	t.Helper()
	wt := named[*wfv1.WorkflowTemplate](objs, "train-model")
	if wt == nil {
		t.Fatal("no WorkflowTemplate train-model")
	}
	tpl := map[string]*wfv1.Template{}
	for i := range wt.Spec.Templates {
		tpl[wt.Spec.Templates[i].Name] = &wt.Spec.Templates[i]
	}
	vars := map[string]string{"workflow.name": run}
	for _, p := range wt.Spec.Arguments.Parameters {
		vars["workflow.parameters."+p.Name] = p.Value.String()
	}
	return tpl, vars
}

// setArms renders one set-arms step: the experiment it writes.
func setArms(t testing.TB, tpl map[string]*wfv1.Template, step wfv1.WorkflowStep, vars map[string]string, current string) *experiment.Config {
	t.Helper()
	in := map[string]string{}
	for k, v := range vars {
		in[k] = v
	}
	for _, p := range step.Arguments.Parameters {
		v, err := argoRender(p.Value.String(), vars, current)
		if err != nil {
			t.Fatalf("step %s argument %s: %v", step.Name, p.Name, err)
		}
		in["inputs.parameters."+p.Name] = v
	}
	manifest, err := argoRender(tpl[step.Template].Resource.Manifest, in, current)
	if err != nil {
		t.Fatalf("step %s: %v", step.Name, err)
	}
	var cm corev1.ConfigMap
	if err := yaml.UnmarshalStrict([]byte(manifest), &cm); err != nil {
		t.Fatalf("step %s: the patch is no ConfigMap: %v", step.Name, err)
	}
	if cm.Name != "ranking-experiment" {
		t.Fatalf("step %s patches ConfigMap %q, want ranking-experiment", step.Name, cm.Name)
	}
	exp, err := parseExperiment(cm.Data["experiment.json"])
	if err != nil {
		t.Fatalf("step %s writes an experiment ranking would refuse: %v\n%s", step.Name, err, cm.Data["experiment.json"])
	}
	return exp
}

// treated returns which of n users an experiment puts in treatment.
func treated(exp *experiment.Config, n int) []bool {
	out := make([]bool, n)
	for i := range out {
		out[i] = exp.Assign(fmt.Sprintf("user-%d", i)).Name == "treatment"
	}
	return out
}

// TestModelCanaryKeepsUsersSticky renders the model canary of train-model
// step by step from the experiment this repository ships: every step
// writes an experiment ranking accepts, control keeps the version it
// served, treatment gets the candidate at 5, 25 and then 50% of users, and
// a user once in treatment stays there as it grows (sticky per user: the
// mesh never re-splits); promotion pins both arms to the candidate; the
// exit handler's rollback puts treatment back on control's version and
// leaves an experiment it did not start alone.
func TestModelCanaryKeepsUsersSticky(t *testing.T) {
	objs := build(t, prod)
	const run = "train-model-nightly-1"
	tpl, vars := trainModel(t, objs, run)
	shipped := named[*corev1.ConfigMap](objs, "ranking-experiment").Data["experiment.json"]
	before := experimentOf(t, prod, objs)

	canary := tpl["canary"]
	if canary == nil || canary.Steps == nil {
		t.Fatal("train-model: no canary steps template")
	}
	var exps []*experiment.Config
	current := shipped
	for _, group := range canary.Steps {
		for _, st := range group.Steps {
			if st.Template != "set-arms" {
				continue
			}
			exp := setArms(t, tpl, st, vars, current)
			exps = append(exps, exp)
			b, _ := json.Marshal(exp)
			current = string(b)
		}
	}
	if len(exps) != 4 {
		t.Fatalf("the canary writes the experiment %d times, want 5%%, 25%%, 50%% and the promotion", len(exps))
	}
	const users = 4000
	var prev []bool
	for i, want := range []float64{5, 25, 50} {
		exp := exps[i]
		tr, _ := exp.Arm("treatment")
		if exp.Arms[0].Name != "control" || exp.Arms[0].ModelVersion != before.Arms[0].ModelVersion || tr.ModelVersion != run || tr.Weight != want || exp.Arms[0].Weight+tr.Weight != 100 {
			t.Errorf("canary step %d writes %+v, want control on %q first, treatment on %q at %v%%", i, exp.Arms, before.Arms[0].ModelVersion, run, want)
		}
		now := treated(exp, users)
		n := 0
		for u := range now {
			if now[u] {
				n++
			}
			if prev != nil && prev[u] && !now[u] {
				t.Errorf("canary step %d: user-%d left treatment as it grew to %v%%", i, u, want)
				break
			}
		}
		if got := 100 * float64(n) / users; got < want-3 || got > want+3 {
			t.Errorf("canary step %d: %.1f%% of users in treatment, want about %v%%", i, got, want)
		}
		prev = now
	}
	if promoted := exps[3]; promoted.Arms[0].ModelVersion != run || slices.ContainsFunc(promoted.Arms, func(a experiment.Arm) bool { return a.ModelVersion != run }) {
		t.Errorf("promotion writes %+v, want every arm on %s", promoted.Arms, run)
	}

	// The exit handler after a breach at 25%: the live experiment is the
	// canary's; the rollback step writes treatment back on control's
	// version, and runs only when this run's candidate is in treatment.
	cleanup := tpl["cleanup"]
	mid, _ := json.Marshal(exps[1])
	for _, group := range cleanup.Steps {
		for _, st := range group.Steps {
			if st.Template != "set-arms" {
				continue
			}
			back := setArms(t, tpl, st, vars, string(mid))
			tr, _ := back.Arm("treatment")
			if tr.ModelVersion != before.Arms[0].ModelVersion || back.Arms[0].ModelVersion != before.Arms[0].ModelVersion {
				t.Errorf("rollback writes %+v, want both arms on %q", back.Arms, before.Arms[0].ModelVersion)
			}
			if !strings.Contains(st.When, "{{workflow.status}} != Succeeded") || !strings.Contains(st.When, "'$.arms[1].model_version') == workflow.name}}") {
				t.Errorf("rollback runs when %q; want only after a failure, and only when this run's candidate is in treatment", st.When)
			}
		}
	}
}

// modelCanaryAnalysis renders the AnalysisRun of the model canary's
// analyse step and decodes it strictly.
func modelCanaryAnalysis(t testing.TB, objs []object) *rolloutsv1.AnalysisRun {
	t.Helper()
	tpl, vars := trainModel(t, objs, "train-model-nightly-1")
	a := tpl["analyse"]
	if a == nil || a.Resource == nil {
		t.Fatal("train-model: no analyse resource template")
	}
	manifest, err := argoRender(a.Resource.Manifest, vars, "")
	if err != nil {
		t.Fatalf("analyse: %v", err)
	}
	raw, err := yaml.YAMLToJSONStrict([]byte(manifest))
	if err != nil {
		t.Fatalf("analyse: %v", err)
	}
	o, err := newObject("train-model analyse", raw)
	if err != nil {
		t.Fatal(err)
	}
	run, ok := o.typed.(*rolloutsv1.AnalysisRun)
	if !ok {
		t.Fatalf("analyse creates a %s, want an AnalysisRun", o.kind)
	}
	if a.Resource.SuccessCondition == "" || a.Resource.FailureCondition == "" {
		t.Error("analyse: the step must wait for the AnalysisRun's success and fail on its failure")
	}
	return run
}
