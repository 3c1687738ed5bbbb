package manifeststest

import (
	"flag"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	istionetworking "istio.io/client-go/pkg/apis/networking/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/labels"
	knservingv1 "knative.dev/serving/pkg/apis/serving/v1"
	"sigs.k8s.io/yaml"

	"github.com/recsys/recsys/libs/servicemap"
	"github.com/recsys/recsys/services/web"
)

// table is the service table by name.
func table() map[string]servicemap.Service {
	out := map[string]servicemap.Service{}
	for _, s := range servicemap.All() {
		out[string(s.Name)] = s
	}
	return out
}

// infraPorts are the ports, beside the table's and Redis's and Kafka's,
// that a NetworkPolicy may open, with why.
var infraPorts = map[int32]string{53: "DNS", 15012: "istiod", 443: "the Kubernetes API", 6443: "the Kubernetes API"}

// TestServiceTableAgrees: libs/servicemap is the one source of the
// servers' names and ports, and everything else says the same. Each
// server's binary listens on its table ports by default; the web edge
// mounts exactly the table's public servers at their ports; in every
// Kubernetes build and in docker-compose.yml each server listens on its
// table ports (flags and environment parsed as the binary does) and
// opens exactly those container ports, and every address of a server that
// a flag names carries its gRPC port (its HTTP port for -*-http), every
// Redis and Kafka address their standard ports; each Kubernetes Service
// of a server has its two ports, named for Istio, aimed at those container
// ports; every Istio route port and NetworkPolicy port is one of them; the
// compose file publishes them on the same host ports, checks health on the
// HTTP port, and Prometheus scrapes that port; the images EXPOSE them; and
// the README's port table lists them.
func TestServiceTableAgrees(t *testing.T) {
	tab := table()
	for name, s := range tab {
		fs, err := flagSet(name)
		if err != nil {
			t.Errorf("table server %s: %v", name, err)
			continue
		}
		if g, h := fs.Lookup("grpc-addr").DefValue, fs.Lookup("http-addr").DefValue; g != fmt.Sprintf(":%d", s.GRPCPort) || h != fmt.Sprintf(":%d", s.HTTPPort) {
			t.Errorf("%s: default -grpc-addr %s -http-addr %s, want the table's :%d and :%d", name, g, h, s.GRPCPort, s.HTTPPort)
		}
		want := []string{strconv.Itoa(s.GRPCPort), strconv.Itoa(s.HTTPPort)}
		slices.Sort(want)
		got := dockerfileValues(t, name, "EXPOSE")
		if len(got) == 0 || slices.ContainsFunc(got, func(e string) bool { f := strings.Fields(e); slices.Sort(f); return !slices.Equal(f, want) }) {
			t.Errorf("services/%s/Dockerfile: EXPOSE %q, want %q in every target", name, got, want)
		}
	}
	var edge web.Config
	fs := flag.NewFlagSet("web", flag.ContinueOnError)
	edge.RegisterFlags(fs)
	for name, s := range tab {
		up, mounted := edge.Upstreams[name]
		if mounted != (s.Package != "") || (mounted && (fs.Lookup(name+"-grpc").DefValue != s.GRPCAddr() || fs.Lookup(name+"-http").DefValue != s.HTTPAddr())) {
			t.Errorf("web edge: upstream %s %+v (mounted %v), want the table's public servers at %s and %s", name, up, mounted, s.GRPCAddr(), s.HTTPAddr())
		}
	}
	if len(edge.Upstreams) != 4 {
		t.Errorf("web edge mounts %v, want userfeatures, itemfeatures, ranking and feedback", sortedKeys(edge.Upstreams))
	}

	// Knative routes its Services on port 80, whatever the container's.
	knativeRouted := map[string]map[string]bool{knative: {}}
	for _, ks := range all[*knservingv1.Service](build(t, knative)) {
		knativeRouted[knative][ks.Name] = true
	}
	for src, ws := range sources(t) {
		for _, w := range ws {
			for _, c := range w.containers {
				bin := binaryOf(c.Image)
				if w.script {
					continue
				}
				fs, _ := binaryFlags(bin, c, c.Command, w.resolve, w.params)
				if fs == nil {
					continue // TestContainerFlags reports it
				}
				for _, err := range addressErrors(fs, knativeRouted[src]) {
					t.Errorf("%s: %s: %v", src, w.owner, err)
				}
				s, server := tab[bin]
				if !server || !w.serving {
					continue
				}
				var open []int
				for _, p := range c.Ports {
					open = append(open, int(p.ContainerPort))
				}
				slices.Sort(open)
				want := []int{s.GRPCPort, s.HTTPPort}
				if strings.HasPrefix(w.owner, "Knative") {
					want = want[:1] // Knative routes one port: gRPC over h2c
				}
				slices.Sort(want)
				if listen := []int{port(fs, "grpc-addr"), port(fs, "http-addr")}; listen[0] != s.GRPCPort || listen[1] != s.HTTPPort || !slices.Equal(open, want) {
					t.Errorf("%s: %s: listens on %v and opens container ports %v, want the table's %d and %d", src, w.owner, listen, open, s.GRPCPort, s.HTTPPort)
				}
			}
		}
	}

	for _, b := range appBuilds {
		objs := build(t, b)
		for name := range tab {
			if b != knative && named[*corev1.Service](objs, name) == nil {
				t.Errorf("%s: no Service %s", b, name)
			}
		}
		for _, svc := range all[*corev1.Service](objs) {
			s, ok := tab[svc.Name]
			if !ok {
				t.Errorf("%s: Service %s is no server of the table", b, svc.Name)
				continue
			}
			for _, p := range svc.Spec.Ports {
				want, prefix := s.GRPCPort, "grpc-"
				if strings.HasPrefix(p.Name, "http-") {
					want, prefix = s.HTTPPort, "http-"
				}
				if !strings.HasPrefix(p.Name, prefix) || int(p.Port) != want || !targetsPort(t, objs, svc, p, want) {
					t.Errorf("%s: Service %s port %s %d -> %s: want grpc-* on %d and http-* on %d, each aimed at that container port", b, svc.Name, p.Name, p.Port, p.TargetPort.String(), s.GRPCPort, s.HTTPPort)
				}
			}
		}
	}
	istio := build(t, istioDir)
	for _, vs := range all[*istionetworking.VirtualService](istio) {
		ports := map[uint32]bool{}
		for _, h := range vs.Spec.Hosts {
			if s, ok := tab[host(h)]; ok {
				ports[uint32(s.GRPCPort)], ports[uint32(s.HTTPPort)] = true, true
			}
		}
		for _, r := range vs.Spec.Http {
			for _, m := range r.Match {
				if m.Port != 0 && !ports[m.Port] {
					t.Errorf("VirtualService %s route %q matches port %d, no port of its hosts %v", vs.Name, r.Name, m.Port, vs.Spec.Hosts)
				}
			}
			for _, d := range append(routeDestinations(r), r.Mirror) {
				s, ok := tab[host(d.GetHost())]
				if n := d.GetPort().GetNumber(); d != nil && (!ok || n != uint32(s.GRPCPort) && n != uint32(s.HTTPPort)) {
					t.Errorf("VirtualService %s route %q: destination %s port %d, want a server of the table on its gRPC or HTTP port", vs.Name, r.Name, d.GetHost(), n)
				}
			}
		}
	}
	known := map[int32]bool{servicemap.RedisPort: true, servicemap.KafkaPort: true}
	for _, s := range tab {
		known[int32(s.GRPCPort)], known[int32(s.HTTPPort)] = true, true
	}
	for _, np := range all[*networkingv1.NetworkPolicy](istio) {
		var ports []networkingv1.NetworkPolicyPort
		for _, r := range np.Spec.Ingress {
			ports = append(ports, r.Ports...)
		}
		for _, r := range np.Spec.Egress {
			ports = append(ports, r.Ports...)
		}
		for _, p := range ports {
			if n := p.Port.IntVal; !known[n] && infraPorts[n] == "" {
				t.Errorf("NetworkPolicy %s: port %d is no port of the service table, Redis, Kafka or %v", np.Name, n, infraPorts)
			}
		}
	}
	composeAgrees(t, tab)
	readmeAgrees(t, tab)
}

// port is the port of a listen-address flag's value.
func port(fs *flag.FlagSet, name string) int {
	_, p, _ := net.SplitHostPort(fs.Lookup(name).Value.String())
	n, _ := strconv.Atoi(p)
	return n
}

// addressErrors checks every address a binary's flags name: a server of
// the table (by its Service or compose name, or its in-cluster DNS name)
// on its gRPC port, or its HTTP port for -<server>-http; Redis and Kafka
// on their standard ports.
func addressErrors(fs *flag.FlagSet, knativeRouted map[string]bool) []error {
	tab := table()
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		for _, item := range strings.Split(strings.TrimPrefix(f.Value.String(), "cluster://"), ",") {
			h, p, err := net.SplitHostPort(strings.TrimSpace(item))
			n, _ := strconv.Atoi(p)
			if err != nil || h == "" {
				continue
			}
			name, _, _ := strings.Cut(h, ".")
			want := 0
			switch s, ok := tab[name]; {
			case f.Name == "kafka":
				want = servicemap.KafkaPort
			case f.Name == "redis":
				want = servicemap.RedisPort
			case knativeRouted[name]:
				want = 80
			case ok && strings.HasSuffix(f.Name, "-http"):
				want = s.HTTPPort
			case ok:
				want = s.GRPCPort
			default:
				continue
			}
			if n != want {
				errs = append(errs, fmt.Errorf("-%s %s: port %d, want %d", f.Name, item, n, want))
			}
		}
	})
	return errs
}

// targetsPort reports whether a Service port's target is the container
// port number want of every serving pod it selects.
func targetsPort(t testing.TB, objs []object, svc *corev1.Service, p corev1.ServicePort, want int) bool {
	sel, n := labels.SelectorFromSet(svc.Spec.Selector), 0
	for _, w := range workloads(t, objs) {
		if !w.serving || !sel.Matches(labels.Set(w.labels)) {
			continue
		}
		n++
		if !slices.ContainsFunc(w.containers, func(c corev1.Container) bool {
			return slices.ContainsFunc(c.Ports, func(cp corev1.ContainerPort) bool {
				return int(cp.ContainerPort) == want && (cp.Name == p.TargetPort.StrVal || cp.ContainerPort == p.TargetPort.IntVal)
			})
		}) {
			return false
		}
	}
	return n > 0
}

var healthPort = regexp.MustCompile(`/dev/tcp/[^/ ]+/(\d+)`)

// composeAgrees: every compose server publishes its table ports on the same
// host ports on loopback (an alternative in a profile, such as the GPU
// ranking, on others), no host port twice; its health check asks /readyz on
// its HTTP port; Prometheus scrapes that port.
func composeAgrees(t *testing.T, tab map[string]servicemap.Service) {
	p := composeProject(t)
	var prom struct {
		ScrapeConfigs []struct {
			MetricsPath   string                       `json:"metrics_path"`
			StaticConfigs []struct{ Targets []string } `json:"static_configs"`
			DNSSDConfigs  []struct {
				Names []string
				Port  int
			} `json:"dns_sd_configs"`
		} `json:"scrape_configs"`
	}
	if err := yaml.Unmarshal(readRepoFile(t, "deploy/compose/prometheus.yml"), &prom); err != nil {
		t.Fatal(err)
	}
	scraped := map[string]bool{}
	for _, sc := range prom.ScrapeConfigs {
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				scraped[target] = sc.MetricsPath == "" || sc.MetricsPath == "/metrics"
			}
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				scraped[net.JoinHostPort(n, strconv.Itoa(d.Port))] = sc.MetricsPath == "" || sc.MetricsPath == "/metrics"
			}
		}
	}
	published := map[string]string{}
	for _, name := range sortedKeys(p.Services) {
		svc := p.Services[name]
		for _, port := range svc.Ports {
			if port.Published == "" {
				continue
			}
			key := port.Published + "/" + port.Protocol
			if other, ok := published[key]; ok || port.HostIP != "127.0.0.1" {
				t.Errorf("compose service %s: host port %s on %q (also %q): want each once, on 127.0.0.1 (Redis and Kafka have no authentication)", name, port.Published, port.HostIP, other)
			}
			published[key] = name
			if _, server := tab[binaryOf(svc.Image)]; server && len(svc.Profiles) == 0 && port.Published != strconv.Itoa(int(port.Target)) {
				t.Errorf("compose service %s: container port %d published on %s, want the same number (make run's)", name, port.Target, port.Published)
			}
		}
		s, server := tab[binaryOf(svc.Image)]
		if !server || !strings.HasPrefix(imageName(svc.Image), "recsys/") {
			continue
		}
		test := ""
		if svc.HealthCheck != nil {
			test = strings.Join(svc.HealthCheck.Test, " ")
		}
		if m := healthPort.FindStringSubmatch(test); m == nil || m[1] != strconv.Itoa(s.HTTPPort) || !strings.Contains(test, "/readyz") {
			t.Errorf("compose service %s: health check %q, want /readyz on the HTTP port %d", name, test, s.HTTPPort)
		}
		if !scraped[net.JoinHostPort(string(s.Name), strconv.Itoa(s.HTTPPort))] {
			t.Errorf("deploy/compose/prometheus.yml: nothing scrapes /metrics on %s:%d", s.Name, s.HTTPPort)
		}
	}
}

// readmeAgrees: the README's port table lists the service table, and the
// standard servers' table Kafka and Redis at their ports.
func readmeAgrees(t *testing.T, tab map[string]servicemap.Service) {
	readme := string(readRepoFile(t, "README.md"))
	_, section, _ := strings.Cut(readme, "\n## Ports\n")
	section, _, _ = strings.Cut(section, "\n## ")
	rows := map[string][]int{}
	for _, line := range strings.Split(section, "\n") {
		cells := strings.Split(strings.Trim(line, "| "), "|")
		var nums []int
		for _, c := range cells[1:] {
			if n, err := strconv.Atoi(strings.Fields(c + " x")[0]); err == nil {
				nums = append(nums, n)
			}
		}
		if name := strings.Fields(cells[0] + " x")[0]; len(nums) > 0 {
			rows[name] = nums
		}
	}
	want := map[string][]int{"Kafka": {servicemap.KafkaPort}, "Redis": {servicemap.RedisPort}, "Prometheus": {9090}}
	for name, s := range tab {
		want[name] = []int{s.GRPCPort, s.HTTPPort}
	}
	if fmt.Sprint(rows) != fmt.Sprint(want) {
		t.Errorf("README.md, section Ports: rows %v, want the service table's %v", rows, want)
	}
}

// TestProductionBinariesCarryNoTestServers: no service binary but make
// run's launcher (services/local) links the embedded servers
// (libs/embedded, miniredis, kfake): `go list -deps` of every
// services/*/cmd/* package.
func TestProductionBinariesCarryNoTestServers(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command on PATH")
	}
	root := repoRoot(t)
	cmds, _ := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*"))
	var pkgs []string
	for _, c := range cmds {
		if rel, _ := filepath.Rel(root, c); !strings.HasPrefix(rel, filepath.Join("services", "local")+string(filepath.Separator)) {
			pkgs = append(pkgs, "./"+filepath.ToSlash(rel))
		}
	}
	if len(pkgs) < 8 {
		t.Fatalf("found binaries %v: want every service's", pkgs)
	}
	cmd := exec.Command("go", append([]string{"list", "-f", `{{.ImportPath}}{{range .Deps}} {{.}}{{end}}`}, pkgs...)...)
	cmd.Dir = root
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.String())
	}
	forbidden := regexp.MustCompile(`^(github\.com/recsys/recsys/libs/embedded|github\.com/alicebob/miniredis|github\.com/twmb/franz-go/pkg/kfake)`)
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		fields := strings.Fields(line)
		for _, dep := range fields[1:] {
			if forbidden.MatchString(dep) {
				t.Errorf("%s links %s: test servers belong in services/local and libs/testenv only", fields[0], dep)
			}
		}
	}
}
