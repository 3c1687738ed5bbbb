package manifeststest

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"

	securityapi "istio.io/api/security/v1beta1"
	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	istiosecurity "istio.io/client-go/pkg/apis/security/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/labels"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	networkingapi "istio.io/api/networking/v1alpha3"

	// The gRPC services whose method paths the authorization policies name.
	_ "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/ranking/v1"
	_ "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
)

// istioProtocols are the port-name prefixes Istio reads as the protocol
// (https://istio.io/latest/docs/ops/configuration/traffic-management/protocol-selection/).
var istioProtocols = []string{"grpc", "grpc-web", "http", "http2", "https", "mongo", "mysql", "redis", "tcp", "tls", "udp"}

// externalPrincipals are the identities from outside namespace recsys that
// the policies may name (their service accounts are the mesh's, not ours).
var externalPrincipals = map[string]string{
	"cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account": "the ingress gateway",
	"cluster.local/ns/monitoring/sa/prometheus-k8s":                         "Prometheus",
}

const (
	principalPrefix  = "cluster.local/ns/" + namespace + "/sa/"
	ingressPrincipal = "cluster.local/ns/istio-system/sa/istio-ingressgateway-service-account"
	recordEvents     = "/recsys.feedback.v1.FeedbackService/RecordEvents"
)

// TestServicePorts: every Service port is named with a protocol prefix
// Istio understands, agrees with its appProtocol, and targets a container
// port that the selected pods have.
func TestServicePorts(t *testing.T) {
	for _, b := range appBuilds {
		objs := build(t, b)
		for _, s := range all[*corev1.Service](objs) {
			sel := labels.SelectorFromSet(s.Spec.Selector)
			for _, p := range s.Spec.Ports {
				proto, ok := istioProtocol(p.Name)
				if !ok {
					t.Errorf("%s: Service %s port %q: want a name <protocol>[-suffix] with a protocol in %v", b, s.Name, p.Name, istioProtocols)
				}
				if p.AppProtocol != nil && *p.AppProtocol != proto {
					t.Errorf("%s: Service %s port %q: appProtocol %q disagrees with the name", b, s.Name, p.Name, *p.AppProtocol)
				}
				for _, w := range workloads(t, objs) {
					if !w.serving || !sel.Matches(labels.Set(w.labels)) {
						continue
					}
					if !hasTargetPort(w.containers, p) {
						t.Errorf("%s: Service %s port %q: target port %s is not a container port of %s", b, s.Name, p.Name, p.TargetPort.String(), w.owner)
					}
				}
			}
		}
	}
	for _, bad := range []string{"api", "grpcapi", "metrics-http", ""} {
		if _, ok := istioProtocol(bad); ok {
			t.Errorf("istioProtocol(%q) = ok, want a rejection", bad)
		}
	}
}

// istioProtocol returns the protocol a port name declares to Istio.
func istioProtocol(name string) (string, bool) {
	best := ""
	for _, p := range istioProtocols {
		if (name == p || strings.HasPrefix(name, p+"-")) && len(p) > len(best) {
			best = p
		}
	}
	return best, best != ""
}

func hasTargetPort(cs []corev1.Container, p corev1.ServicePort) bool {
	for _, c := range cs {
		for _, cp := range c.Ports {
			if cp.Name == p.TargetPort.StrVal || (p.TargetPort.StrVal == "" && cp.ContainerPort == p.TargetPort.IntVal) {
				return true
			}
		}
	}
	return false
}

// host returns the Service name of an in-namespace host
// (name.recsys.svc.cluster.local), or "".
func host(h string) string {
	name, ok := strings.CutSuffix(h, "."+namespace+".svc.cluster.local")
	if !ok || strings.Contains(name, ".") {
		return ""
	}
	return name
}

// TestDestinationRules: every DestinationRule is for a Service of the
// mesh builds, uses Istio mutual TLS, bounds connections, ejects outliers,
// and each subset selects pods behind that Service.
func TestDestinationRules(t *testing.T) {
	drs := all[*istionetworking.DestinationRule](build(t, istioDir))
	if len(drs) == 0 {
		t.Fatal("istio: no DestinationRule")
	}
	for _, dr := range drs {
		tp := dr.Spec.GetTrafficPolicy()
		if tp.GetTls().GetMode() != networkingapi.ClientTLSSettings_ISTIO_MUTUAL {
			t.Errorf("DestinationRule %s: TLS mode %v, want ISTIO_MUTUAL", dr.Name, tp.GetTls().GetMode())
		}
		if tp.GetOutlierDetection() == nil || tp.GetConnectionPool() == nil {
			t.Errorf("DestinationRule %s: want outlierDetection and connectionPool", dr.Name)
		}
		for _, b := range meshBuilds {
			objs := build(t, b)
			svc := named[*corev1.Service](objs, host(dr.Spec.Host))
			if svc == nil {
				t.Errorf("%s: DestinationRule %s: host %s is no Service of the build", b, dr.Name, dr.Spec.Host)
				continue
			}
			for _, sub := range dr.Spec.Subsets {
				if err := subsetError(objs, svc, sub); err != nil {
					t.Errorf("%s: DestinationRule %s: %v", b, dr.Name, err)
				}
			}
		}
	}
	ranking := named[*istionetworking.DestinationRule](build(t, istioDir), "ranking")
	if ranking == nil || len(ranking.Spec.Subsets) < 2 {
		t.Error("istio: DestinationRule ranking needs the subsets v1 and v2")
	}
}

// subsetError says why a subset selects no pod behind the Service.
func subsetError(objs []object, svc *corev1.Service, sub *networkingapi.Subset) error {
	if len(sub.Labels) == 0 {
		return fmt.Errorf("subset %s has no labels", sub.Name)
	}
	for _, d := range all[*appsv1.Deployment](objs) {
		pod := labels.Set(d.Spec.Template.Labels)
		if labels.SelectorFromSet(svc.Spec.Selector).Matches(pod) && labels.SelectorFromSet(sub.Labels).Matches(pod) {
			return nil
		}
	}
	return fmt.Errorf("subset %s (labels %v) matches no Deployment behind Service %s", sub.Name, sub.Labels, svc.Name)
}

// TestVirtualServices: every route's weights sum to 100, every destination
// is a Service (and subset, and port) that exists, every mirror copies 5%,
// and ranking's canary mirrors to the candidate.
func TestVirtualServices(t *testing.T) {
	istio := build(t, istioDir)
	vss := all[*istionetworking.VirtualService](istio)
	if len(vss) == 0 {
		t.Fatal("istio: no VirtualService")
	}
	gateways := map[string]bool{"mesh": true}
	for _, g := range all[*istionetworking.Gateway](istio) {
		gateways[g.Name] = true
	}
	for _, vs := range vss {
		for _, g := range vs.Spec.Gateways {
			if !gateways[g] {
				t.Errorf("VirtualService %s: gateway %q is not in the build", vs.Name, g)
			}
		}
		for _, r := range vs.Spec.Http {
			for _, err := range routeErrors(r) {
				t.Errorf("VirtualService %s route %q: %v", vs.Name, r.Name, err)
			}
			for _, b := range meshBuilds {
				for _, err := range destinationErrors(build(t, b), istio, r) {
					t.Errorf("%s: VirtualService %s route %q: %v", b, vs.Name, r.Name, err)
				}
			}
		}
	}
}

// routeErrors checks one route on its own: weights and mirroring.
func routeErrors(r *networkingapi.HTTPRoute) []error {
	var errs []error
	sum := int32(0)
	for _, d := range r.Route {
		if d.Weight < 0 || d.Weight > 100 {
			errs = append(errs, fmt.Errorf("weight %d is outside 0..100", d.Weight))
		}
		sum += d.Weight
	}
	switch {
	case len(r.Route) == 1 && sum != 0 && sum != 100:
		errs = append(errs, fmt.Errorf("its one destination has weight %d, want 100 (or none)", sum))
	case len(r.Route) > 1 && sum != 100:
		errs = append(errs, fmt.Errorf("weights sum to %d, want 100", sum))
	case len(r.Route) == 0 && r.Redirect == nil && r.DirectResponse == nil && r.Delegate == nil:
		errs = append(errs, fmt.Errorf("no destination"))
	}
	if r.Mirror != nil || len(r.Mirrors) > 0 {
		p := r.MirrorPercentage
		if r.Mirror == nil || p == nil || math.Abs(p.Value-5) > 1e-9 {
			errs = append(errs, fmt.Errorf("mirror %v at %v, want mirror with mirrorPercentage 5", r.Mirror, p))
		}
	}
	return errs
}

// destinationErrors checks a route's destinations (and mirror) against the
// Services of an app build and the DestinationRules of istio/.
func destinationErrors(app, istio []object, r *networkingapi.HTTPRoute) []error {
	var errs []error
	dests := []*networkingapi.Destination{r.Mirror}
	for _, d := range r.Route {
		dests = append(dests, d.Destination)
	}
	for _, d := range dests {
		if d == nil {
			continue
		}
		svc := named[*corev1.Service](app, host(d.Host))
		if svc == nil {
			errs = append(errs, fmt.Errorf("destination host %s is no Service of the build", d.Host))
			continue
		}
		if n := d.GetPort().GetNumber(); n != 0 && !slices.ContainsFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return uint32(p.Port) == n }) {
			errs = append(errs, fmt.Errorf("destination %s port %d is not a port of Service %s", d.Host, n, svc.Name))
		}
		if d.GetPort().GetNumber() == 0 && len(svc.Spec.Ports) > 1 {
			// Istio's analyzer IST0112: which port is meant is unsaid.
			errs = append(errs, fmt.Errorf("destination %s names no port, and Service %s has %d", d.Host, svc.Name, len(svc.Spec.Ports)))
		}
		if d.Subset == "" {
			continue
		}
		found := false
		for _, dr := range all[*istionetworking.DestinationRule](istio) {
			if dr.Spec.Host == d.Host && slices.ContainsFunc(dr.Spec.Subsets, func(s *networkingapi.Subset) bool { return s.Name == d.Subset }) {
				found = true
			}
		}
		if !found {
			errs = append(errs, fmt.Errorf("destination %s subset %s is in no DestinationRule", d.Host, d.Subset))
		}
	}
	return errs
}

// TestRouteErrorsRejects shows routeErrors failing on the mistakes it is
// there to catch.
func TestRouteErrorsRejects(t *testing.T) {
	dest := func(subset string, w int32) *networkingapi.HTTPRouteDestination {
		return &networkingapi.HTTPRouteDestination{Destination: &networkingapi.Destination{Host: "ranking", Subset: subset}, Weight: w}
	}
	mirror := &networkingapi.Destination{Host: "ranking", Subset: "v2"}
	cases := map[string]*networkingapi.HTTPRoute{
		"weights sum to 90":      {Route: []*networkingapi.HTTPRouteDestination{dest("v1", 85), dest("v2", 5)}},
		"weights sum to 105":     {Route: []*networkingapi.HTTPRouteDestination{dest("v1", 100), dest("v2", 5)}},
		"one destination at 50":  {Route: []*networkingapi.HTTPRouteDestination{dest("v1", 50)}},
		"mirror at 10%":          {Route: []*networkingapi.HTTPRouteDestination{dest("v1", 0)}, Mirror: mirror, MirrorPercentage: &networkingapi.Percent{Value: 10}},
		"mirror without percent": {Route: []*networkingapi.HTTPRouteDestination{dest("v1", 0)}, Mirror: mirror},
		"no destination":         {},
	}
	for name, r := range cases {
		if errs := routeErrors(r); len(errs) == 0 {
			t.Errorf("routeErrors(%s) = no errors, want one", name)
		}
	}
}

func routeNamed(vs *istionetworking.VirtualService, name string) *networkingapi.HTTPRoute {
	for _, r := range vs.Spec.Http {
		if r.Name == name {
			return r
		}
	}
	return nil
}

// request is what a route match is tested against. port 0: the gateway
// (its routes match no port).
type request struct {
	path, method string
	port         uint32
}

// mayMatch reports whether a route may take the request: it certainly does
// when a match entry has only conditions the request meets, and may when an
// entry also needs headers the request could carry.
func mayMatch(r *networkingapi.HTTPRoute, req request) (may, certain bool) {
	if len(r.Match) == 0 {
		return true, true
	}
	for _, m := range r.Match {
		if !stringMatches(m.Uri, req.path) || !stringMatches(m.Method, req.method) || (m.Port != 0 && m.Port != req.port) {
			continue
		}
		may = true
		if len(m.Headers) == 0 && len(m.QueryParams) == 0 && len(m.Gateways) == 0 && m.Authority == nil && len(m.WithoutHeaders) == 0 {
			certain = true
		}
	}
	return may, certain
}

func stringMatches(s *networkingapi.StringMatch, v string) bool {
	switch {
	case s == nil:
		return true
	case s.GetExact() != "":
		return s.GetExact() == v
	case s.GetPrefix() != "":
		return strings.HasPrefix(v, s.GetPrefix())
	case s.GetRegex() != "":
		return regexp.MustCompile("^(?:" + s.GetRegex() + ")$").MatchString(v)
	}
	return true
}

// TestRecordEventsNotRetried: wherever a RecordEvents call (gRPC, gRPC-Web
// or REST POST /v1/events) can be routed, the route retries nothing. A route
// that does not set retries gets Istio's default of two, so attempts: 0
// must be explicit.
func TestRecordEventsNotRetried(t *testing.T) {
	reqs := []request{{recordEvents, "POST", 9094}, {recordEvents, "POST", 8094}, {"/v1/events", "POST", 8094}}
	checked := 0
	for _, vs := range all[*istionetworking.VirtualService](build(t, istioDir)) {
		if !slices.ContainsFunc(vs.Spec.Http, func(r *networkingapi.HTTPRoute) bool {
			return slices.ContainsFunc(r.Route, func(d *networkingapi.HTTPRouteDestination) bool { return host(d.Destination.Host) == "feedback" })
		}) {
			continue // a VirtualService that never routes to feedback never sees its calls
		}
		checked++
		for _, req := range reqs {
			if len(vs.Spec.Gateways) > 0 {
				req.port = 0
			}
			for _, err := range retryErrors(vs.Spec.Http, req) {
				t.Errorf("VirtualService %s: %v", vs.Name, err)
			}
		}
	}
	if checked < 2 {
		t.Errorf("%d VirtualServices route to feedback, want the mesh's and the gateway's", checked)
	}
	if errs := retryErrors([]*networkingapi.HTTPRoute{{Name: "all", Route: []*networkingapi.HTTPRouteDestination{{
		Destination: &networkingapi.Destination{Host: "feedback.recsys.svc.cluster.local"}}}}}, reqs[0]); len(errs) == 0 {
		t.Error("retryErrors(a catch-all route to feedback without retries) = no errors, want one")
	}
}

// retryErrors walks the routes in order, as Envoy does, up to the first
// that certainly takes req, and reports each one that may take it to
// feedback with retries.
func retryErrors(routes []*networkingapi.HTTPRoute, req request) []error {
	var errs []error
	for _, r := range routes {
		may, certain := mayMatch(r, req)
		if !may {
			continue
		}
		toFeedback := slices.ContainsFunc(r.Route, func(d *networkingapi.HTTPRouteDestination) bool {
			return host(d.Destination.Host) == "feedback"
		})
		if toFeedback && (r.Retries == nil || r.Retries.Attempts != 0) {
			errs = append(errs, fmt.Errorf("route %q takes %s %s to feedback with retries %v; want attempts: 0", r.Name, req.method, req.path, r.Retries))
		}
		if certain {
			if !toFeedback {
				errs = append(errs, fmt.Errorf("route %q takes %s %s, but not to feedback", r.Name, req.method, req.path))
			}
			break
		}
	}
	return errs
}

// TestCORS: the gateway's CORS origins are the services' (recsys-config
// cors-origins), so a browser gets the same answer from both.
func TestCORS(t *testing.T) {
	public := named[*istionetworking.VirtualService](build(t, istioDir), "recsys-public")
	if public == nil {
		t.Fatal("istio: no VirtualService recsys-public")
	}
	for _, b := range []string{base, prod, gpu} {
		allowed := strings.Split(recsysConfig(t, build(t, b)).Data["cors-origins"], ",")
		for _, r := range public.Spec.Http {
			if r.DirectResponse != nil {
				continue // answered by the gateway itself
			}
			if r.CorsPolicy == nil || len(r.CorsPolicy.AllowOrigins) == 0 {
				t.Errorf("VirtualService recsys-public route %q: no corsPolicy", r.Name)
				continue
			}
			for _, o := range r.CorsPolicy.AllowOrigins {
				if !slices.Contains(allowed, o.GetExact()) {
					t.Errorf("%s: VirtualService recsys-public route %q allows origin %v, which recsys-config cors-origins %q lacks", b, r.Name, o, allowed)
				}
			}
		}
	}
	for _, g := range all[*istionetworking.Gateway](build(t, istioDir)) {
		for _, s := range g.Spec.Servers {
			for _, h := range s.Hosts {
				if !slices.Contains(public.Spec.Hosts, h) {
					t.Errorf("Gateway %s serves host %s, which no VirtualService routes", g.Name, h)
				}
			}
		}
	}
}

// TestPeerAuthentication: mutual TLS is STRICT for the whole namespace.
func TestPeerAuthentication(t *testing.T) {
	ok := false
	for _, pa := range all[*istiosecurity.PeerAuthentication](build(t, istioDir)) {
		if pa.Spec.Selector == nil && pa.Spec.GetMtls().GetMode() == securityapi.PeerAuthentication_MutualTLS_STRICT {
			ok = true
		}
		for port, m := range pa.Spec.PortLevelMtls {
			if m.GetMode() != securityapi.PeerAuthentication_MutualTLS_STRICT {
				t.Errorf("PeerAuthentication %s: port %d is %v, want STRICT", pa.Name, port, m.GetMode())
			}
		}
	}
	if !ok {
		t.Error("istio: no namespace-wide PeerAuthentication with mode STRICT")
	}
}

// TestAuthorization: deny by default, every principal is a service account
// that exists (or a named mesh identity), every method path is a real gRPC
// method, and the policies grant what docs/architecture.md ("Rollout: arms, subsets and the mesh") allows and no more: web
// calls only ranking and feedback, ranking only reads features, nobody
// upserts through the feature services (the batch jobs write Redis), and
// every caller a rule names really makes the call.
func TestAuthorization(t *testing.T) {
	policies := all[*istiosecurity.AuthorizationPolicy](build(t, istioDir))
	app := build(t, prod)

	denyAll := slices.ContainsFunc(policies, func(p *istiosecurity.AuthorizationPolicy) bool {
		s := &p.Spec
		allowNothing := s.Selector == nil && s.TargetRef == nil && len(s.TargetRefs) == 0 && s.Action == securityapi.AuthorizationPolicy_ALLOW && len(s.Rules) == 0 && s.GetProvider() == nil
		denyEverything := s.Selector == nil && s.Action == securityapi.AuthorizationPolicy_DENY && len(s.Rules) == 1 && len(s.Rules[0].From) == 0 && len(s.Rules[0].To) == 0 && len(s.Rules[0].When) == 0
		return allowNothing || denyEverything
	})
	if !denyAll {
		t.Error("istio: no deny-by-default policy (an empty-spec ALLOW, or a DENY with one empty rule)")
	}

	// grants[principal] = callee apps and the paths they may call there.
	grants := map[string]map[string][]string{}
	for _, p := range policies {
		if len(p.Spec.Rules) == 0 {
			continue
		}
		if p.Spec.Action != securityapi.AuthorizationPolicy_ALLOW {
			t.Errorf("AuthorizationPolicy %s: action %v; only ALLOW policies are expected beside the default", p.Name, p.Spec.Action)
		}
		callee := "*"
		if sel := p.Spec.GetSelector().GetMatchLabels(); sel != nil {
			callee = sel["app"]
			if !slices.ContainsFunc(podLabels(t, app), func(l map[string]string) bool { return labels.SelectorFromSet(sel).Matches(labels.Set(l)) }) {
				t.Errorf("AuthorizationPolicy %s: selector %v matches no pod of %s", p.Name, sel, prod)
			}
		}
		for i, r := range p.Spec.Rules {
			var principals []string
			for _, f := range r.From {
				principals = append(principals, f.GetSource().GetPrincipals()...)
				if len(f.GetSource().GetNotPrincipals()) > 0 || len(f.GetSource().GetNamespaces()) > 0 || len(f.GetSource().GetRequestPrincipals()) > 0 {
					t.Errorf("AuthorizationPolicy %s rule %d: name callers by principal only", p.Name, i)
				}
			}
			if len(principals) == 0 {
				t.Errorf("AuthorizationPolicy %s rule %d: no principal: it would allow any caller", p.Name, i)
			}
			if len(r.To) == 0 {
				t.Errorf("AuthorizationPolicy %s rule %d: no operation: it would allow every path", p.Name, i)
			}
			var paths []string
			for _, to := range r.To {
				op := to.GetOperation()
				paths = append(paths, op.GetPaths()...)
				if len(op.GetPaths()) == 0 && len(op.GetNotPaths()) == 0 {
					t.Errorf("AuthorizationPolicy %s rule %d: an operation without paths", p.Name, i)
				}
				for _, path := range op.GetPaths() {
					if err := grpcPathError(path); err != nil {
						t.Errorf("AuthorizationPolicy %s rule %d: %v", p.Name, i, err)
					}
				}
				for _, np := range op.GetNotPaths() {
					paths = append(paths, "not "+np)
				}
			}
			for _, pr := range principals {
				if err := principalError(app, pr); err != nil {
					t.Errorf("AuthorizationPolicy %s rule %d: %v", p.Name, i, err)
				}
				if grants[pr] == nil {
					grants[pr] = map[string][]string{}
				}
				grants[pr][callee] = append(grants[pr][callee], paths...)
			}
		}
	}

	sa := func(name string) string { return principalPrefix + name }
	for callee := range grants[sa("web")] {
		if callee != "ranking" && callee != "feedback" {
			t.Errorf("web may call %s; it may call only ranking and feedback", callee)
		}
	}
	for callee, paths := range grants[sa("ranking")] {
		if callee != "userfeatures" && callee != "itemfeatures" {
			t.Errorf("ranking may call %s; it may call only the feature services", callee)
		}
		for _, path := range paths {
			if !strings.Contains(path, "/Get") && !strings.Contains(path, "/List") {
				t.Errorf("ranking may call %s on %s; it may only read", path, callee)
			}
		}
	}
	for pr, callees := range grants {
		for callee, paths := range callees {
			for _, path := range paths {
				if strings.Contains(path, "/Upsert") || strings.Contains(path, ":upsert") {
					t.Errorf("%s may call %s on %s; nothing in the cluster upserts through the feature services", pr, path, callee)
				}
				if callee == "*" && path != "/metrics" {
					t.Errorf("%s may call %s on every workload; only /metrics may be granted namespace-wide", pr, path)
				}
			}
		}
	}
	// Every in-namespace caller a rule names really calls that callee: its
	// pods are configured with the callee's address.
	for pr, callees := range grants {
		name, ok := strings.CutPrefix(pr, principalPrefix)
		if !ok {
			continue
		}
		for callee := range callees {
			if callee == "*" {
				continue
			}
			if !callsService(t, app, name, callee) {
				t.Errorf("a rule lets %s call %s, but no %s pod names %s's address in its args or environment: nothing makes that call", name, callee, name, callee)
			}
		}
	}
	for _, callee := range []string{"web", "ranking", "feedback"} {
		if len(grants[ingressPrincipal][callee]) == 0 {
			t.Errorf("the ingress gateway may not reach %s", callee)
		}
	}
	for callee := range grants[ingressPrincipal] {
		if callee != "web" && callee != "ranking" && callee != "feedback" {
			t.Errorf("the ingress gateway may reach %s; only web, ranking and feedback are public", callee)
		}
	}
}

// principalError says why a principal is unknown.
func principalError(app []object, p string) error {
	if name, ok := strings.CutPrefix(p, principalPrefix); ok {
		if named[*corev1.ServiceAccount](app, name) == nil {
			return fmt.Errorf("principal %s: no ServiceAccount %s in %s", p, name, prod)
		}
		return nil
	}
	if _, ok := externalPrincipals[p]; !ok {
		return fmt.Errorf("principal %s is neither %s<service account> nor a known mesh identity %v", p, principalPrefix, sortedKeys(externalPrincipals))
	}
	return nil
}

var grpcPath = regexp.MustCompile(`^/([a-z0-9_]+(?:\.[a-z0-9_]+)*\.[A-Z][A-Za-z0-9]*)/([A-Za-z0-9]*\*?)$`)

// grpcPathError says why a path that looks like a gRPC method path names no
// method of the recsys protos. Other paths (REST) pass.
func grpcPathError(path string) error {
	m := grpcPath.FindStringSubmatch(path)
	if m == nil {
		return nil
	}
	d, err := protoregistry.GlobalFiles.FindDescriptorByName(protoreflect.FullName(m[1]))
	if err != nil {
		return fmt.Errorf("path %s: no gRPC service %s", path, m[1])
	}
	svc, ok := d.(protoreflect.ServiceDescriptor)
	if !ok {
		return fmt.Errorf("path %s: %s is not a service", path, m[1])
	}
	method := m[2]
	if method == "*" || method == "" {
		return nil
	}
	if svc.Methods().ByName(protoreflect.Name(method)) == nil {
		return fmt.Errorf("path %s: service %s has no method %s", path, m[1], method)
	}
	return nil
}

// TestPolicyCheckersReject shows the principal and path checks failing.
func TestPolicyCheckersReject(t *testing.T) {
	app := build(t, prod)
	for _, p := range []string{principalPrefix + "nobody", "cluster.local/ns/other/sa/web", "*"} {
		if principalError(app, p) == nil {
			t.Errorf("principalError(%q) = nil, want an error", p)
		}
	}
	for _, p := range []string{"/recsys.ranking.v1.RankingService/Rnak", "/recsys.ranking.v1.RankService/Rank", "/recsys.feedback.v1.FeedbackService/UpsertEvents"} {
		if grpcPathError(p) == nil {
			t.Errorf("grpcPathError(%q) = nil, want an error", p)
		}
	}
	if err := grpcPathError(recordEvents); err != nil {
		t.Errorf("grpcPathError(%q) = %v, want nil", recordEvents, err)
	}
}
