package manifeststest

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/yaml"
)

// The compose platform and the files it mounts, relative to the repository
// root.
const (
	composeFile        = "docker-compose.yml"
	dockerignoreFile   = ".dockerignore"
	prometheusFile     = "deploy/compose/prometheus.yml"
	collectorFile      = "deploy/compose/otel-collector.yaml"
	installCertsFile   = "deploy/compose/install-certs.sh"
	dashboardsDir      = "deploy/compose/grafana/dashboards"
	datasourcesDir     = "deploy/compose/grafana/provisioning/datasources"
	dashboardProvDir   = "deploy/compose/grafana/provisioning/dashboards"
	certsCommandSource = "libs/certs/cmd/certs/main.go"
	// certsService is the one-shot service that copies each service's
	// certificate and key from certs/ into that service's volume.
	certsService = "certs"
	// gpuProfile is the profile of the GPU variant of ranking.
	gpuProfile = "gpu"
)

// loadCompose loads compose file content as docker compose does:
// interpolated (from an empty environment, so every ${VAR:-default} takes
// its default), normalised, with paths resolved against the repository root
// and references checked. profiles "*" enables every profile.
func loadCompose(root string, content []byte, profiles ...string) (*types.Project, error) {
	return loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  root,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(root, composeFile), Content: content}},
		Environment: types.Mapping{},
	}, func(o *loader.Options) { o.Profiles = profiles })
}

func readRepoFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot(t), rel))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// composeProject is docker-compose.yml with every profile enabled.
func composeProject(t testing.TB) *types.Project {
	t.Helper()
	p, err := loadCompose(repoRoot(t), readRepoFile(t, composeFile), "*")
	if err != nil {
		t.Fatalf("%s: %v", composeFile, err)
	}
	return p
}

// composeBinary is a compose service that runs a recsys binary (image
// recsys/<name>), with the flag set that binary will run with.
type composeBinary struct {
	svc types.ServiceConfig
	bin string
	// fs holds the binary's flags as its environment and command set them.
	fs *flag.FlagSet
	// flagErrs is what the binary would reject or silently ignore.
	flagErrs []error
}

// server reports whether the binary serves (has gRPC and HTTP ports).
func (b composeBinary) server() bool { return b.fs.Lookup("grpc-addr") != nil }

func (b composeBinary) flag(name string) string {
	if f := b.fs.Lookup(name); f != nil {
		return f.Value.String()
	}
	return ""
}

// port is the port of a listen-address flag (-grpc-addr, -http-addr).
func (b composeBinary) port(name string) (uint32, error) {
	_, p, err := net.SplitHostPort(b.flag(name))
	if err != nil {
		return 0, fmt.Errorf("-%s %q: %w", name, b.flag(name), err)
	}
	n, err := strconv.ParseUint(p, 10, 16)
	return uint32(n), err
}

// composeBinaries returns the recsys services of p, sorted by name, each
// with its flags parsed the way the binary parses them: the RECSYS_*
// environment, then the command as arguments (the image's entrypoint is
// the binary).
func composeBinaries(p *types.Project) ([]composeBinary, error) {
	var out []composeBinary
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		if !strings.HasPrefix(imageName(s.Image), "recsys/") {
			continue
		}
		b := composeBinary{svc: s, bin: binaryOf(s.Image)}
		fs, err := flagSet(b.bin)
		if err != nil {
			return nil, fmt.Errorf("service %s: %w", name, err)
		}
		b.fs = fs
		c, errs := composeContainer(s)
		noConfigMaps := func(*corev1.ConfigMapKeySelector) (string, error) {
			return "", errors.New("compose has no ConfigMaps")
		}
		b.flagErrs = append(errs, checkFlags(fs, c, nil, noConfigMaps, nil)...)
		out = append(out, b)
	}
	return out, nil
}

// composeContainer is the service as the container checkFlags knows: the
// entrypoint is the container's command, the compose command its args.
func composeContainer(s types.ServiceConfig) (corev1.Container, []error) {
	var errs []error
	c := corev1.Container{Name: s.Name, Image: s.Image, Command: s.Entrypoint, Args: s.Command}
	for _, k := range sortedKeys(s.Environment) {
		v := s.Environment[k]
		if v == nil {
			errs = append(errs, fmt.Errorf("env %s has no value: it would come from the host's environment; give it one", k))
			continue
		}
		c.Env = append(c.Env, corev1.EnvVar{Name: k, Value: *v})
	}
	if len(s.EnvFiles) > 0 {
		c.EnvFrom = []corev1.EnvFromSource{{}} // checkFlags refuses it, saying why
	}
	return c, errs
}

// containerPorts are the ports a service's container is reachable on inside
// the network: those published and those exposed.
func containerPorts(s types.ServiceConfig) (map[uint32]bool, error) {
	ports := map[uint32]bool{}
	for _, p := range s.Ports {
		ports[p.Target] = true
	}
	for _, e := range s.Expose {
		n, err := strconv.ParseUint(strings.TrimSuffix(e, "/tcp"), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("expose %q: want one TCP port", e)
		}
		ports[uint32(n)] = true
	}
	return ports, nil
}

// dnsNames maps every name a service answers to on the default network (its
// own and its aliases) to the services behind it.
func dnsNames(p *types.Project) map[string][]string {
	names := map[string][]string{}
	for _, name := range sortedKeys(p.Services) {
		names[name] = append(names[name], name)
		for _, n := range p.Services[name].Networks {
			if n == nil {
				continue
			}
			for _, a := range n.Aliases {
				names[a] = append(names[a], name)
			}
		}
	}
	return names
}

// TestComposeLoads: docker-compose.yml loads with the compose-spec library
// (schema, interpolation, references), with no profile (docker compose up),
// with the gpu profile and with all of them, and has the whole platform.
func TestComposeLoads(t *testing.T) {
	root := repoRoot(t)
	content := readRepoFile(t, composeFile)
	for _, profiles := range [][]string{nil, {gpuProfile}, {"*"}} {
		p, err := loadCompose(root, content, profiles...)
		if err != nil {
			t.Fatalf("profiles %q: %v", profiles, err)
		}
		want := []string{"redis", "kafka", "otel-collector", "jaeger", "prometheus", "grafana", certsService, "trainer",
			"userfeatures", "itemfeatures", "ranking", "feedback", "featurecompute", "web"}
		if len(profiles) > 0 {
			want = append(want, "ranking-gpu")
		}
		for _, s := range want {
			if _, ok := p.Services[s]; !ok {
				t.Errorf("profiles %q: no service %s (have %v)", profiles, s, sortedKeys(p.Services))
			}
		}
		if len(profiles) == 0 {
			for name, s := range p.Services {
				if s.Deploy != nil && s.Deploy.Resources.Reservations != nil && len(s.Deploy.Resources.Reservations.Devices) > 0 {
					t.Errorf("service %s reserves devices without a profile: docker compose up would fail on a machine without them", name)
				}
			}
		}
	}
}

// TestComposeFlags: for every recsys service, each command argument and
// each RECSYS_* variable is a flag its binary registers, with a value it
// accepts (the same check as TestContainerFlags for Kubernetes).
func TestComposeFlags(t *testing.T) {
	bins, err := composeBinaries(composeProject(t))
	if err != nil {
		t.Fatal(err)
	}
	if len(bins) < 8 {
		t.Errorf("%d recsys services, want the six servers, the trainer and ingest at least", len(bins))
	}
	for _, b := range bins {
		for _, err := range b.flagErrs {
			t.Errorf("service %s (%s): %v", b.svc.Name, b.bin, err)
		}
	}
}

// TestComposeBuilds: every build has the repository root as its context and
// a Dockerfile there, the target stage and the build args it names exist,
// the image runs its binary as a non-root user, every file it copies is in
// the context (and not left out by .dockerignore), and every service binary
// has its Dockerfile.
func TestComposeBuilds(t *testing.T) {
	root := repoRoot(t)
	for _, err := range composeBuildErrors(root, composeProject(t)) {
		t.Error(err)
	}
	ignored, err := dockerignored(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, keep := range []string{"certs", "models", "data", ".git", "node_modules", ".cache"} {
		if !slices.Contains(ignored, keep) {
			t.Errorf("%s does not leave out %s: private keys, models or hundreds of MB would reach the builder", dockerignoreFile, keep)
		}
	}
	// The ranking image's ONNX Runtime is the one make ort fetches.
	ranking, err := readDockerfile(root, "services/ranking/Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	makefile := string(readRepoFile(t, "Makefile"))
	for _, v := range []string{"ORT_VERSION", "ORT_SHA256"} {
		want := ""
		if m := regexp.MustCompile(`(?m)^` + v + `\s*:?=\s*(\S+)`).FindStringSubmatch(makefile); m != nil {
			want = m[1]
		}
		if want == "" || ranking.args[v] != want {
			t.Errorf("services/ranking/Dockerfile: ARG %s=%q, Makefile %s=%q: keep them in step", v, ranking.args[v], v, want)
		}
	}
	cmds, err := filepath.Glob(filepath.Join(root, "services", "*", "cmd", "*"))
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range cmds {
		bin := filepath.Base(dir)
		if bin == "recsys" { // services/local: everything in one process, for make run
			continue
		}
		rel := filepath.ToSlash(filepath.Join("services", bin, "Dockerfile"))
		df, err := readDockerfile(root, rel)
		if err != nil {
			t.Errorf("binary %s: %v", bin, err)
			continue
		}
		for _, err := range imageErrors(df, "", bin) {
			t.Errorf("%s: %v", rel, err)
		}
	}
}

func composeBuildErrors(root string, p *types.Project) []error {
	var errs []error
	ignored, err := dockerignored(root)
	if err != nil {
		return []error{err}
	}
	for _, name := range sortedKeys(p.Services) {
		s := p.Services[name]
		if s.Build == nil {
			continue
		}
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("service %s: build: %s", name, fmt.Sprintf(format, args...)))
		}
		if s.Build.Context != root {
			fail("context %s, want the repository root (the Dockerfiles copy gen/, libs/ and services/)", s.Build.Context)
			continue
		}
		bin := binaryOf(s.Image)
		rel := filepath.ToSlash(s.Build.Dockerfile)
		if want := "services/" + bin + "/Dockerfile"; !strings.HasPrefix(imageName(s.Image), "recsys/") || rel != want {
			fail("image %s from %s: want image recsys/<binary> built from services/<binary>/Dockerfile", s.Image, rel)
		}
		df, err := readDockerfile(root, rel)
		if err != nil {
			fail("%v", err)
			continue
		}
		for _, arg := range sortedKeys(s.Build.Args) {
			if _, ok := df.args[arg]; !ok {
				fail("build arg %s: %s declares no ARG %s", arg, rel, arg)
			}
		}
		for _, err := range imageErrors(df, s.Build.Target, bin) {
			fail("%s: %v", rel, err)
		}
		for _, st := range df.stages {
			for _, src := range st.copies {
				clean := path.Clean(src)
				if _, err := os.Stat(filepath.Join(root, clean)); err != nil {
					fail("%s stage %s copies %s: %v", rel, st.name, src, err)
				}
				for _, ig := range ignored {
					if clean == ig || strings.HasPrefix(clean, ig+"/") {
						fail("%s stage %s copies %s, which %s leaves out of the context (%s)", rel, st.name, src, dockerignoreFile, ig)
					}
				}
			}
		}
	}
	return errs
}

// dockerignored returns the plain paths (no wildcards) .dockerignore leaves
// out of the build context.
func dockerignored(root string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(root, dockerignoreFile))
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "#") || strings.HasPrefix(l, "!") || strings.ContainsAny(l, "*?[") {
			continue
		}
		out = append(out, path.Clean(strings.TrimPrefix(l, "/")))
	}
	return out, nil
}

// imageErrors checks the stage an image is built from (target, or the last
// stage): it runs the binary as its entrypoint, as a numeric non-root user,
// and its build stage builds that binary.
func imageErrors(df dockerfile, target, bin string) []error {
	st, err := df.stage(target)
	if err != nil {
		return []error{err}
	}
	var errs []error
	if want := []string{"/usr/local/bin/" + bin}; !slices.Equal(st.entrypoint, want) {
		errs = append(errs, fmt.Errorf("stage %s: ENTRYPOINT %q, want %q (compose passes flags as the command)", st.name, st.entrypoint, want))
	}
	uid, _, _ := strings.Cut(st.user, ":")
	if n, err := strconv.Atoi(uid); err != nil || n == 0 {
		errs = append(errs, fmt.Errorf("stage %s: USER %q, want a numeric non-root uid (runAsNonRoot can only verify a number)", st.name, st.user))
	}
	if !slices.ContainsFunc(df.stages, func(s dockerStage) bool { return strings.Contains(s.run, "./cmd/"+bin) }) {
		errs = append(errs, fmt.Errorf("no stage builds ./cmd/%s", bin))
	}
	return errs
}

// dockerfile is what the checks need of a Dockerfile.
type dockerfile struct {
	args   map[string]string // every ARG declared, global or in a stage, with its default
	stages []dockerStage
}

type dockerStage struct {
	name       string
	user       string
	entrypoint []string
	expose     []uint32
	copies     []string // sources copied from the build context
	run        string   // every RUN, joined
}

// stage returns the named stage, or the last one (docker build's default).
func (d dockerfile) stage(name string) (dockerStage, error) {
	if len(d.stages) == 0 {
		return dockerStage{}, errors.New("no FROM")
	}
	if name == "" {
		return d.stages[len(d.stages)-1], nil
	}
	for _, s := range d.stages {
		if s.name == name {
			return s, nil
		}
	}
	return dockerStage{}, fmt.Errorf("no stage %q", name)
}

func readDockerfile(root, rel string) (dockerfile, error) {
	b, err := os.ReadFile(filepath.Join(root, rel))
	if err != nil {
		return dockerfile{}, err
	}
	df, err := parseDockerfile(string(b))
	if err != nil {
		return dockerfile{}, fmt.Errorf("%s: %w", rel, err)
	}
	return df, nil
}

// parseDockerfile reads the instructions the checks use; line
// continuations and comments are handled as docker build does.
func parseDockerfile(text string) (dockerfile, error) {
	df := dockerfile{args: map[string]string{}}
	var instructions []string
	var cur strings.Builder
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur.WriteString(rest + " ")
			continue
		}
		cur.WriteString(trimmed)
		instructions = append(instructions, cur.String())
		cur.Reset()
	}
	if cur.Len() > 0 {
		return df, errors.New("the last instruction ends in a line continuation")
	}
	for _, ins := range instructions {
		keyword, rest, _ := strings.Cut(ins, " ")
		rest = strings.TrimSpace(rest)
		fields := strings.Fields(rest)
		keyword = strings.ToUpper(keyword)
		if keyword == "ARG" {
			name, value, _ := strings.Cut(rest, "=")
			df.args[strings.TrimSpace(name)] = strings.Trim(strings.TrimSpace(value), `"`)
			continue
		}
		if keyword == "FROM" {
			st := dockerStage{name: strconv.Itoa(len(df.stages))}
			if len(fields) == 3 && strings.EqualFold(fields[1], "AS") {
				st.name = fields[2]
			}
			df.stages = append(df.stages, st)
			continue
		}
		if len(df.stages) == 0 {
			return df, fmt.Errorf("%s before the first FROM", keyword)
		}
		st := &df.stages[len(df.stages)-1]
		switch keyword {
		case "USER":
			st.user = rest
		case "ENTRYPOINT":
			st.entrypoint = nil
			if err := json.Unmarshal([]byte(rest), &st.entrypoint); err != nil {
				return df, fmt.Errorf("ENTRYPOINT %s: want the exec form (a JSON array): %w", rest, err)
			}
		case "EXPOSE":
			for _, f := range fields {
				n, err := strconv.ParseUint(strings.TrimSuffix(f, "/tcp"), 10, 16)
				if err != nil {
					return df, fmt.Errorf("EXPOSE %s: %w", f, err)
				}
				st.expose = append(st.expose, uint32(n))
			}
		case "RUN":
			st.run += rest + "\n"
		case "COPY", "ADD":
			var srcs []string
			fromStage := false
			for _, f := range fields {
				if flagName, ok := strings.CutPrefix(f, "--"); ok {
					fromStage = fromStage || strings.HasPrefix(flagName, "from=")
					continue
				}
				srcs = append(srcs, f)
			}
			if len(srcs) < 2 {
				return df, fmt.Errorf("%s %s: want sources and a destination", keyword, rest)
			}
			if !fromStage {
				st.copies = append(st.copies, srcs[:len(srcs)-1]...)
			}
		}
	}
	return df, nil
}

// TestComposePorts: every recsys server's container ports are exactly its
// -grpc-addr and -http-addr ports (published, or exposed inside the
// network), its image EXPOSEs them, its health check asks /readyz on its
// HTTP port, and no host port is published twice or beyond loopback.
func TestComposePorts(t *testing.T) {
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composePortErrors(repoRoot(t), p, bins) {
		t.Error(err)
	}
}

var healthPort = regexp.MustCompile(`/dev/tcp/[^/ ]+/(\d+)`)

func composePortErrors(root string, p *types.Project, bins []composeBinary) []error {
	var errs []error
	servers := 0
	for _, b := range bins {
		if !b.server() {
			continue
		}
		servers++
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("service %s: %s", b.svc.Name, fmt.Sprintf(format, args...)))
		}
		grpcPort, err1 := b.port("grpc-addr")
		httpPort, err2 := b.port("http-addr")
		if err := errors.Join(err1, err2); err != nil {
			fail("%v", err)
			continue
		}
		listen := map[uint32]bool{grpcPort: true, httpPort: true}
		have, err := containerPorts(b.svc)
		if err != nil {
			fail("%v", err)
		}
		for _, port := range slices.Sorted(maps.Keys(have)) {
			if !listen[port] {
				fail("port %d is published or exposed, but the binary listens on %d (gRPC) and %d (HTTP)", port, grpcPort, httpPort)
			}
		}
		for _, port := range []uint32{grpcPort, httpPort} {
			if !have[port] {
				fail("the binary listens on %d, which is neither published nor exposed", port)
			}
		}
		if b.svc.Build != nil {
			if df, err := readDockerfile(root, b.svc.Build.Dockerfile); err == nil {
				if st, err := df.stage(b.svc.Build.Target); err == nil && !sameKeys(listen, st.expose) {
					fail("image EXPOSEs %v, but the binary listens on %d and %d", st.expose, grpcPort, httpPort)
				}
			}
		}
		hc := b.svc.HealthCheck
		if hc == nil || hc.Disable || len(hc.Test) == 0 {
			fail("no health check")
			continue
		}
		test := strings.Join(hc.Test, " ")
		m := healthPort.FindStringSubmatch(test)
		if m == nil || m[1] != strconv.Itoa(int(httpPort)) || !strings.Contains(test, "/readyz") {
			fail("health check %q does not ask /readyz on the HTTP port %d", test, httpPort)
		}
	}
	if servers < 6 {
		errs = append(errs, fmt.Errorf("%d recsys servers, want userfeatures, itemfeatures, ranking, feedback, featurecompute and web", servers))
	}
	published := map[string]string{}
	for _, name := range sortedKeys(p.Services) {
		for _, port := range p.Services[name].Ports {
			if port.Published == "" {
				continue
			}
			if port.HostIP != "127.0.0.1" {
				errs = append(errs, fmt.Errorf("service %s: port %s published on %q, want 127.0.0.1 (Redis and Kafka have no authentication, the HTTP ports no TLS)", name, port.Published, port.HostIP))
			}
			key := port.HostIP + ":" + port.Published + "/" + port.Protocol
			if other, ok := published[key]; ok {
				errs = append(errs, fmt.Errorf("services %s and %s both publish %s", other, name, key))
			}
			published[key] = name
		}
	}
	return errs
}

func sameKeys(m map[uint32]bool, s []uint32) bool {
	if len(m) != len(s) {
		return false
	}
	for _, v := range s {
		if !m[v] {
			return false
		}
	}
	return true
}

// TestComposeAddresses: every flag naming another service (host:port) names
// one that listens there: a gRPC address its gRPC port, an -http address
// its HTTP port, Redis and Kafka their ports; a gRPC client of a service
// with mTLS has a certificate and dials the name in the server's
// certificate.
func TestComposeAddresses(t *testing.T) {
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composeAddressErrors(p, bins) {
		t.Error(err)
	}
}

func composeAddressErrors(p *types.Project, bins []composeBinary) []error {
	var errs []error
	names := dnsNames(p)
	byService := map[string]composeBinary{}
	for _, b := range bins {
		byService[b.svc.Name] = b
	}
	dialled := 0
	for _, b := range bins {
		b.fs.VisitAll(func(f *flag.Flag) {
			for _, item := range strings.Split(f.Value.String(), ",") {
				host, port, err := net.SplitHostPort(strings.TrimSpace(item))
				if err != nil || host == "" || host == "localhost" || net.ParseIP(host) != nil {
					continue // not an address, or a default on loopback
				}
				fail := func(format string, args ...any) {
					errs = append(errs, fmt.Errorf("service %s: -%s %s: %s", b.svc.Name, f.Name, item, fmt.Sprintf(format, args...)))
				}
				targets := names[host]
				if len(targets) == 0 {
					fail("no service answers to %q", host)
					continue
				}
				dialled++
				for _, target := range targets {
					tb, recsys := byService[target]
					if !recsys || !tb.server() {
						ports, err := containerPorts(p.Services[target])
						if err != nil || !ports[parsePort(port)] {
							fail("service %s does not publish or expose port %s", target, port)
						}
						continue
					}
					listen, kind := "grpc-addr", "gRPC"
					if strings.HasSuffix(f.Name, "-http") {
						listen, kind = "http-addr", "HTTP"
					}
					want, err := tb.port(listen)
					if err != nil || parsePort(port) != want {
						fail("the %s port of %s is %d", kind, target, want)
						continue
					}
					if kind == "gRPC" && tb.flag("tls-cert") != "" {
						if b.flag("tls-cert") == "" {
							fail("%s requires mTLS on gRPC, and %s has no certificate to present", target, b.svc.Name)
						}
						if id := certIdentity(tb.flag("tls-cert")); id != host {
							fail("%s presents the certificate of %q, which does not name %q (make certs names each certificate after its service)", target, id, host)
						}
					}
				}
			}
		})
	}
	if dialled == 0 {
		errs = append(errs, errors.New("no flag names another service: the check saw nothing"))
	}
	return errs
}

func parsePort(s string) uint32 {
	n, err := strconv.ParseUint(s, 10, 16)
	if err != nil {
		return 0
	}
	return uint32(n)
}

// certIdentity is the service a certificate file of make certs belongs to:
// certs/<service>.pem.
func certIdentity(certFile string) string { return strings.TrimSuffix(path.Base(certFile), ".pem") }

// TestComposeTLS: every recsys server runs mTLS with its own certificate,
// key and the CA, from a read-only volume that the certs service fills from
// certs/ (make certs) for that identity alone, and make certs issues that
// identity.
func TestComposeTLS(t *testing.T) {
	root := repoRoot(t)
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := makeCertsServices(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composeTLSErrors(root, p, bins, ids) {
		t.Error(err)
	}
}

func composeTLSErrors(root string, p *types.Project, bins []composeBinary, issued []string) []error {
	var errs []error
	init, ok := p.Services[certsService]
	if !ok {
		return []error{fmt.Errorf("no service %s to install the certificates", certsService)}
	}
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	// The certs service: certs/ read-only at /in, without creating it when
	// make certs has not run, the script mounted and run, one volume per
	// identity at /out/<identity>.
	installed := map[string]string{} // volume -> identity
	var in, script bool
	for _, v := range init.Volumes {
		switch {
		case v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, "certs"):
			in = v.Target == "/in" && v.ReadOnly && v.Bind != nil && !bool(v.Bind.CreateHostPath)
		case v.Type == types.VolumeTypeBind && v.Source == filepath.Join(root, installCertsFile):
			script = slices.Contains(init.Command, v.Target) || slices.Contains(init.Entrypoint, v.Target)
		case v.Type == types.VolumeTypeVolume:
			if id, ok := strings.CutPrefix(v.Target, "/out/"); ok && !strings.Contains(id, "/") {
				installed[v.Source] = id
			}
		}
	}
	if !in {
		fail("service %s: certs/ is not mounted read-only at /in with create_host_path false", certsService)
	}
	if !script {
		fail("service %s: does not run %s from its mount", certsService, installCertsFile)
	}
	if b, err := os.ReadFile(filepath.Join(root, installCertsFile)); err != nil || !strings.Contains(string(b), "/in/") || !strings.Contains(string(b), "/out/") {
		fail("%s: missing, or not copying from /in to /out (%v)", installCertsFile, err)
	}
	servers := 0
	for _, b := range bins {
		if !b.server() {
			continue
		}
		servers++
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("service %s: %s", b.svc.Name, fmt.Sprintf(format, args...)))
		}
		cert, key, ca := b.flag("tls-cert"), b.flag("tls-key"), b.flag("tls-ca")
		if cert == "" || key == "" || ca == "" {
			fail("-tls-cert %q, -tls-key %q, -tls-ca %q: want mTLS on every service", cert, key, ca)
			continue
		}
		id := certIdentity(cert)
		dir := path.Dir(cert)
		if path.Base(cert) != id+".pem" || key != path.Join(dir, id+"-key.pem") || ca != path.Join(dir, "ca.pem") {
			fail("-tls-cert %s, -tls-key %s, -tls-ca %s: want <dir>/<service>.pem, <dir>/<service>-key.pem and <dir>/ca.pem, as make certs names them", cert, key, ca)
		}
		if !slices.Contains(issued, id) {
			fail("presents certs/%s.pem, which make certs does not issue (it issues %v)", id, issued)
		}
		aliases := []string{b.svc.Name}
		for _, n := range b.svc.Networks {
			if n != nil {
				aliases = append(aliases, n.Aliases...)
			}
		}
		if !slices.Contains(aliases, id) {
			fail("presents the certificate of %s, but is reached as %v", id, aliases)
		}
		i := slices.IndexFunc(b.svc.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == dir })
		if i < 0 {
			fail("nothing is mounted at %s, where its certificate is", dir)
			continue
		}
		v := b.svc.Volumes[i]
		if v.Type != types.VolumeTypeVolume || !v.ReadOnly {
			fail("%s is a %s mount (read-only %v), want a read-only volume filled by the %s service", dir, v.Type, v.ReadOnly, certsService)
			continue
		}
		if installed[v.Source] != id {
			fail("volume %s at %s: the %s service installs %q into it, want %s's certificate", v.Source, dir, certsService, installed[v.Source], id)
		}
		if b.svc.DependsOn[certsService].Condition != types.ServiceConditionCompletedSuccessfully {
			fail("does not wait for the %s service to complete", certsService)
		}
	}
	if servers == 0 {
		errs = append(errs, errors.New("no recsys server: the check saw nothing"))
	}
	return errs
}

// makeCertsServices returns the services make certs issues certificates
// for: the default of its -services flag.
func makeCertsServices(root string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, certsCommandSource), nil, parser.SkipObjectResolution)
	if err != nil {
		return nil, err
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		lit, ok := n.(*ast.CompositeLit)
		if sel, isSel := typeSelector(lit, ok); !isSel || sel != "config.StringList" {
			return true
		}
		for _, e := range lit.Elts {
			if s, ok := stringLit(e); ok {
				out = append(out, s)
			}
		}
		return false
	})
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: found no config.StringList of service names", certsCommandSource)
	}
	return out, nil
}

func typeSelector(lit *ast.CompositeLit, ok bool) (string, bool) {
	if !ok {
		return "", false
	}
	sel, ok := lit.Type.(*ast.SelectorExpr)
	if !ok {
		return "", false
	}
	x, ok := sel.X.(*ast.Ident)
	if !ok {
		return "", false
	}
	return x.Name + "." + sel.Sel.Name, true
}

func stringLit(e ast.Expr) (string, bool) {
	b, ok := e.(*ast.BasicLit)
	if !ok || b.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(b.Value)
	return s, err == nil
}

// TestComposeTelemetry: every recsys server exports traces to the
// OpenTelemetry collector service, on the port its OTLP/gRPC receiver
// listens on, under its own service name; the collector's config is the
// mounted one, and its trace exporters reach services of the file.
func TestComposeTelemetry(t *testing.T) {
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composeTelemetryErrors(repoRoot(t), p, bins) {
		t.Error(err)
	}
}

func composeTelemetryErrors(root string, p *types.Project, bins []composeBinary) []error {
	var errs []error
	fail := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	names := dnsNames(p)
	// reachable reports whether host:port is a service's container port.
	reachable := func(host, port string) bool {
		for _, s := range names[host] {
			if ports, err := containerPorts(p.Services[s]); err == nil && ports[parsePort(port)] {
				return true
			}
		}
		return false
	}
	var collector types.ServiceConfig
	var found bool
	for _, s := range p.Services {
		if strings.Contains(imageName(s.Image), "opentelemetry-collector") {
			collector, found = s, true
		}
	}
	if !found {
		return []error{errors.New("no OpenTelemetry collector service")}
	}
	var config string
	for _, a := range collector.Command {
		if v, ok := strings.CutPrefix(a, "--config="); ok {
			config = v
		}
	}
	i := slices.IndexFunc(collector.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == config })
	if config == "" || i < 0 || collector.Volumes[i].Source != filepath.Join(root, collectorFile) {
		fail("service %s: does not run with --config= the mounted %s", collector.Name, collectorFile)
	}
	var cc struct {
		Receivers map[string]struct {
			Protocols map[string]struct {
				Endpoint string `json:"endpoint"`
			} `json:"protocols"`
		} `json:"receivers"`
		Exporters map[string]struct {
			Endpoint string `json:"endpoint"`
		} `json:"exporters"`
		Service struct {
			Pipelines map[string]struct {
				Receivers []string `json:"receivers"`
				Exporters []string `json:"exporters"`
			} `json:"pipelines"`
		} `json:"service"`
	}
	b, err := os.ReadFile(filepath.Join(root, collectorFile))
	if err == nil {
		err = yaml.Unmarshal(b, &cc)
	}
	if err != nil {
		return append(errs, fmt.Errorf("%s: %w", collectorFile, err))
	}
	traces, ok := cc.Service.Pipelines["traces"]
	if !ok || !slices.Contains(traces.Receivers, "otlp") || len(traces.Exporters) == 0 {
		fail("%s: no traces pipeline from the otlp receiver to an exporter", collectorFile)
	}
	for _, e := range traces.Exporters {
		exp, ok := cc.Exporters[e]
		host, port, err := net.SplitHostPort(exp.Endpoint)
		if !ok || err != nil || !reachable(host, port) {
			fail("%s: exporter %s: endpoint %q is not a port of a service in %s", collectorFile, e, exp.Endpoint, composeFile)
		}
	}
	_, otlpPort, err := net.SplitHostPort(cc.Receivers["otlp"].Protocols["grpc"].Endpoint)
	if err != nil {
		fail("%s: otlp receiver: no gRPC endpoint: %v", collectorFile, err)
	}
	for _, b := range bins {
		if !b.server() {
			continue
		}
		env := func(k string) string {
			if v := b.svc.Environment[k]; v != nil {
				return *v
			}
			return ""
		}
		u, err := url.Parse(env("OTEL_EXPORTER_OTLP_ENDPOINT"))
		if err != nil || u.Scheme != "http" || !slices.Contains(names[u.Hostname()], collector.Name) || u.Port() != otlpPort || !reachable(u.Hostname(), u.Port()) {
			fail("service %s: OTEL_EXPORTER_OTLP_ENDPOINT %q, want http://%s:%s (the collector's OTLP/gRPC receiver)", b.svc.Name, env("OTEL_EXPORTER_OTLP_ENDPOINT"), collector.Name, otlpPort)
		}
		if env("OTEL_SERVICE_NAME") == "" {
			fail("service %s: no OTEL_SERVICE_NAME", b.svc.Name)
		}
	}
	return errs
}

// TestComposeGPU: the GPU ranking is behind the gpu profile, reserves an
// NVIDIA GPU, runs ONNX Runtime's CUDA provider from the image's gpu
// target; nothing else asks for a GPU or for CUDA.
func TestComposeGPU(t *testing.T) {
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composeGPUErrors(bins) {
		t.Error(err)
	}
}

func composeGPUErrors(bins []composeBinary) []error {
	var errs []error
	gpus := 0
	for _, b := range bins {
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("service %s: %s", b.svc.Name, fmt.Sprintf(format, args...)))
		}
		var devices []types.DeviceRequest
		if d := b.svc.Deploy; d != nil && d.Resources.Reservations != nil {
			devices = d.Resources.Reservations.Devices
		}
		gpu := slices.ContainsFunc(devices, func(d types.DeviceRequest) bool {
			return d.Driver == "nvidia" && slices.Contains(d.Capabilities, "gpu") && (d.Count != 0 || len(d.IDs) > 0)
		})
		provider := b.flag("execution-provider")
		if !gpu {
			if len(devices) > 0 {
				fail("reserves devices %+v, want driver nvidia with capabilities [gpu] and a count", devices)
			}
			if provider == "cuda" {
				fail("runs -execution-provider=cuda without a GPU reservation")
			}
			continue
		}
		gpus++
		if b.bin != "ranking" {
			fail("%s reserves a GPU; only ranking runs on one", b.bin)
		}
		if provider != "cuda" {
			fail("execution provider %q on a GPU, want cuda (auto would fall back to the CPU silently)", provider)
		}
		if !slices.Contains(b.svc.Profiles, gpuProfile) {
			fail("profiles %q, want %q: docker compose up must work without a GPU", b.svc.Profiles, gpuProfile)
		}
		if bd := b.svc.Build; bd == nil || bd.Target != "gpu" || bd.Args["ORT_GPU_URL"] == nil || bd.Args["ORT_GPU_SHA256"] == nil {
			fail("build %+v: want target gpu with the build args ORT_GPU_URL and ORT_GPU_SHA256 (a GPU build of ONNX Runtime)", bd)
		}
	}
	if gpus == 0 {
		errs = append(errs, errors.New("no service runs ranking on a GPU"))
	}
	return errs
}

// TestComposeModelRegistry: the registry volume is ranking's -model-root,
// read-only, and the trainer's, read-write; ranking starts after the
// trainer has published.
func TestComposeModelRegistry(t *testing.T) {
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composeRegistryErrors(bins) {
		t.Error(err)
	}
}

func composeRegistryErrors(bins []composeBinary) []error {
	var errs []error
	registries := map[string]bool{}
	var trainer string
	for _, b := range bins {
		if b.bin != "ranking" && b.bin != "trainer" {
			continue
		}
		fail := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("service %s: %s", b.svc.Name, fmt.Sprintf(format, args...)))
		}
		root := b.flag("model-root")
		i := slices.IndexFunc(b.svc.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == root })
		if i < 0 || b.svc.Volumes[i].Type != types.VolumeTypeVolume {
			fail("-model-root %s is not a mounted volume", root)
			continue
		}
		v := b.svc.Volumes[i]
		registries[v.Source] = true
		switch {
		case b.bin == "ranking" && !v.ReadOnly:
			fail("mounts the model registry read-write, want read-only")
		case b.bin == "trainer" && v.ReadOnly:
			fail("mounts the model registry read-only, want read-write")
		case b.bin == "trainer":
			trainer = b.svc.Name
		}
	}
	if len(registries) != 1 || trainer == "" {
		errs = append(errs, fmt.Errorf("model registry volumes %v and trainer %q: want one volume, shared by ranking and a trainer", sortedKeys(registries), trainer))
	}
	for _, b := range bins {
		if b.bin == "ranking" && trainer != "" && b.svc.DependsOn[trainer].Condition != types.ServiceConditionCompletedSuccessfully {
			errs = append(errs, fmt.Errorf("service %s: does not wait for %s to publish a first model (condition service_completed_successfully)", b.svc.Name, trainer))
		}
	}
	return errs
}

// TestComposeHardening: every recsys container runs with a read-only root
// filesystem, no capabilities, no privilege escalation, as the image's
// non-root user.
func TestComposeHardening(t *testing.T) {
	bins, err := composeBinaries(composeProject(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range composeHardeningErrors(bins) {
		t.Error(err)
	}
}

func composeHardeningErrors(bins []composeBinary) []error {
	var errs []error
	for _, b := range bins {
		s := b.svc
		var problems []string
		if !s.ReadOnly {
			problems = append(problems, "read_only is not true")
		}
		if !slices.Contains(s.CapDrop, "ALL") || len(s.CapAdd) > 0 {
			problems = append(problems, fmt.Sprintf("capabilities drop %q and add %q, want drop ALL and add none", s.CapDrop, s.CapAdd))
		}
		if !slices.Contains(s.SecurityOpt, "no-new-privileges:true") {
			problems = append(problems, "security_opt lacks no-new-privileges:true")
		}
		if s.User != "" || s.Privileged {
			problems = append(problems, fmt.Sprintf("user %q, privileged %v: want the image's non-root USER", s.User, s.Privileged))
		}
		for _, p := range problems {
			errs = append(errs, fmt.Errorf("service %s: %s", s.Name, p))
		}
	}
	return errs
}

// prometheusConfig is the part of prometheus.yml the compose platform uses,
// decoded strictly: a field it does not know is an error.
type prometheusConfig struct {
	Global struct {
		ScrapeInterval     string `json:"scrape_interval"`
		EvaluationInterval string `json:"evaluation_interval"`
	} `json:"global"`
	ScrapeConfigs []struct {
		JobName       string `json:"job_name"`
		Scheme        string `json:"scheme"`
		MetricsPath   string `json:"metrics_path"`
		StaticConfigs []struct {
			Targets []string          `json:"targets"`
			Labels  map[string]string `json:"labels"`
		} `json:"static_configs"`
		DNSSDConfigs []struct {
			Names           []string `json:"names"`
			Type            string   `json:"type"`
			Port            int      `json:"port"`
			RefreshInterval string   `json:"refresh_interval"`
		} `json:"dns_sd_configs"`
	} `json:"scrape_configs"`
}

// TestPrometheusScrapesEveryService: prometheus.yml parses, is the config
// the Prometheus service runs, and scrapes /metrics on the HTTP port of
// every recsys server.
func TestPrometheusScrapesEveryService(t *testing.T) {
	p := composeProject(t)
	bins, err := composeBinaries(p)
	if err != nil {
		t.Fatal(err)
	}
	for _, err := range prometheusErrors(repoRoot(t), p, bins, readRepoFile(t, prometheusFile)) {
		t.Error(err)
	}
}

func prometheusErrors(root string, p *types.Project, bins []composeBinary, config []byte) []error {
	var cfg prometheusConfig
	if err := yaml.UnmarshalStrict(config, &cfg); err != nil {
		return []error{fmt.Errorf("%s: %w", prometheusFile, err)}
	}
	var errs []error
	prom, ok := p.Services["prometheus"]
	if !ok || !slices.ContainsFunc(prom.Volumes, func(v types.ServiceVolumeConfig) bool {
		return v.Source == filepath.Join(root, prometheusFile) && v.Target == "/etc/prometheus/prometheus.yml"
	}) {
		errs = append(errs, fmt.Errorf("no service prometheus running %s (mounted at /etc/prometheus/prometheus.yml)", prometheusFile))
	}
	scraped := map[string]bool{} // host:port over plain HTTP at /metrics
	for _, sc := range cfg.ScrapeConfigs {
		if (sc.MetricsPath != "" && sc.MetricsPath != "/metrics") || (sc.Scheme != "" && sc.Scheme != "http") {
			continue
		}
		for _, st := range sc.StaticConfigs {
			for _, target := range st.Targets {
				scraped[target] = true
			}
		}
		for _, d := range sc.DNSSDConfigs {
			for _, n := range d.Names {
				if d.Type == "A" {
					scraped[net.JoinHostPort(n, strconv.Itoa(d.Port))] = true
				}
			}
		}
	}
	servers := 0
	for _, b := range bins {
		if !b.server() {
			continue
		}
		servers++
		port, err := b.port("http-addr")
		if err != nil {
			errs = append(errs, err)
			continue
		}
		names := []string{b.svc.Name}
		for _, n := range b.svc.Networks {
			if n != nil {
				names = append(names, n.Aliases...)
			}
		}
		if !slices.ContainsFunc(names, func(n string) bool { return scraped[net.JoinHostPort(n, strconv.Itoa(int(port)))] }) {
			errs = append(errs, fmt.Errorf("%s: service %s: nothing scrapes /metrics on its HTTP port %d (as %v)", prometheusFile, b.svc.Name, port, names))
		}
	}
	if servers == 0 {
		errs = append(errs, errors.New("no recsys server: the check saw nothing"))
	}
	return errs
}

// TestGrafanaDashboard: every dashboard parses, its panels query the
// provisioned data sources, every metric its PromQL selects is one the
// services register, and it has the panels the platform needs. Grafana
// mounts the provisioning and the dashboards where they point.
func TestGrafanaDashboard(t *testing.T) {
	root := repoRoot(t)
	registered, err := registeredMetrics(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(registered) < 20 {
		t.Fatalf("found %d registered metric names under libs/ and services/: the scan is broken", len(registered))
	}
	uids, err := provisionedDatasources(root)
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, dashboardsDir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboard in %s (%v)", dashboardsDir, err)
	}
	var exprs []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		es, errs := dashboardErrors(b, registered, uids)
		for _, err := range errs {
			t.Errorf("%s: %v", filepath.Base(f), err)
		}
		exprs = append(exprs, es...)
	}
	// The panels the issue asks for.
	needs := []struct {
		what string
		ok   func(string) bool
	}{
		{"rank latency", func(e string) bool { return strings.Contains(e, "recsys_rank_seconds_bucket") }},
		{"inference time per model version", func(e string) bool {
			return strings.Contains(e, "recsys_model_inference_seconds") && strings.Contains(e, "version")
		}},
		{"feature freshness", func(e string) bool { return strings.Contains(e, "recsys_feature_freshness_seconds") }},
		{"consumer lag", func(e string) bool { return strings.Contains(e, "recsys_featurecompute_consumer_lag") }},
		{"per-arm CTR (clicks / impressions)", func(e string) bool {
			return strings.Contains(e, "recsys_experiment_events_total") && strings.Contains(e, `type="click"`) &&
				strings.Contains(e, `type="impression"`) && strings.Contains(e, "arm")
		}},
	}
	for _, n := range needs {
		if !slices.ContainsFunc(exprs, n.ok) {
			t.Errorf("no panel shows %s", n.what)
		}
	}
	for _, err := range grafanaMountErrors(root, composeProject(t)) {
		t.Error(err)
	}
}

// dashboardErrors parses a dashboard and returns its PromQL expressions and
// what is wrong with it.
func dashboardErrors(b []byte, registered map[string]bool, datasources map[string]bool) ([]string, []error) {
	var dash map[string]any
	if err := json.Unmarshal(b, &dash); err != nil {
		return nil, []error{err}
	}
	var errs []error
	if uid, _ := dash["uid"].(string); uid == "" {
		errs = append(errs, errors.New("no uid (links to the dashboard would break on every load)"))
	}
	var exprs []string
	var visit func(v any, where string)
	visit = func(v any, where string) {
		switch v := v.(type) {
		case map[string]any:
			if title, ok := v["title"].(string); ok {
				where = title
			}
			if ds, ok := v["datasource"].(map[string]any); ok {
				if uid, _ := ds["uid"].(string); !datasources[uid] {
					errs = append(errs, fmt.Errorf("panel %q: data source uid %q is not provisioned (have %v)", where, uid, sortedKeys(datasources)))
				}
			}
			if e, ok := v["expr"].(string); ok {
				exprs = append(exprs, e)
				names, err := promqlMetrics(e)
				if err != nil {
					errs = append(errs, fmt.Errorf("panel %q: %q: %w", where, e, err))
				}
				if len(names) == 0 && err == nil {
					errs = append(errs, fmt.Errorf("panel %q: %q selects no metric", where, e))
				}
				for _, n := range names {
					if !registered[n] {
						errs = append(errs, fmt.Errorf("panel %q: metric %s is not registered by any service (a typo, or a metric that was renamed)", where, n))
					}
				}
			}
			for _, k := range sortedKeys(v) {
				visit(v[k], where)
			}
		case []any:
			for _, e := range v {
				visit(e, where)
			}
		}
	}
	visit(dash, "")
	if len(exprs) == 0 {
		errs = append(errs, errors.New("no PromQL expression"))
	}
	return exprs, errs
}

// promqlKeywords are the words of PromQL that are not metric names:
// aggregations, operators and modifiers.
var promqlKeywords = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
	"and": true, "or": true, "unless": true, "atan2": true, "offset": true, "bool": true, "inf": true, "nan": true,
}

// promqlLabelLists are the keywords followed by a parenthesised list of
// label names.
var promqlLabelLists = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// promqlMetrics returns the metric names a PromQL expression selects: the
// identifiers that are not functions, keywords, label names (inside {} or
// after by/without/on/ignoring/group_*), durations (inside []), strings or
// Grafana variables. It is a tokenizer, not a parser: enough to find the
// names, with unbalanced brackets or quotes reported.
func promqlMetrics(expr string) ([]string, error) {
	var names []string
	braces, brackets, parens := 0, 0, 0
	labelList := -1 // paren depth of a label list being skipped
	isIdent := func(c byte) bool {
		return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
	}
	nextNonSpace := func(i int) byte {
		for ; i < len(expr); i++ {
			if expr[i] != ' ' && expr[i] != '\t' && expr[i] != '\n' {
				return expr[i]
			}
		}
		return 0
	}
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for j < len(expr) && expr[j] != c {
				if expr[j] == '\\' && c != '`' {
					j++
				}
				j++
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("unterminated string at %d", i)
			}
			i = j + 1
		case c == '{' || c == '}':
			braces += map[byte]int{'{': 1, '}': -1}[c]
			i++
		case c == '[' || c == ']':
			brackets += map[byte]int{'[': 1, ']': -1}[c]
			i++
		case c == '(':
			parens++
			i++
		case c == ')':
			if labelList == parens {
				labelList = -1
			}
			parens--
			i++
		case c == '$' || c >= '0' && c <= '9' || c == '.':
			// A Grafana variable, a number or a duration (offset 5m).
			i++
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdent(c):
			j := i
			for j < len(expr) && isIdent(expr[j]) {
				j++
			}
			word := expr[i:j]
			i = j
			switch {
			case braces > 0 || brackets > 0 || labelList >= 0:
				// a label name or a duration
			case promqlLabelLists[strings.ToLower(word)] && nextNonSpace(i) == '(':
				labelList = parens + 1
			case promqlKeywords[strings.ToLower(word)]:
			case nextNonSpace(i) == '(':
				// a function
			default:
				names = append(names, word)
			}
		default:
			i++
		}
		if braces < 0 || brackets < 0 || parens < 0 {
			return nil, fmt.Errorf("unbalanced brackets at %d", i)
		}
	}
	if braces != 0 || brackets != 0 || parens != 0 {
		return nil, errors.New("unbalanced brackets")
	}
	return names, nil
}

// TestPromQLMetrics shows the tokenizer finding metric names, and only them.
func TestPromQLMetrics(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`histogram_quantile(0.99, sum by (le, method) (rate(recsys_rank_seconds_bucket[$__rate_interval])))`, []string{"recsys_rank_seconds_bucket"}},
		{`sum by (experiment_id, arm) (increase(recsys_experiment_events_total{type="click", arm=~"a|b"}[$__range])) / sum by (arm) (increase(recsys_experiment_events_total{type="impression"}[5m]))`,
			[]string{"recsys_experiment_events_total", "recsys_experiment_events_total"}},
		{`max by (version, provider) (recsys_model_loaded) * on (version) group_left (provider) up offset 5m > bool 0`, []string{"recsys_model_loaded", "up"}},
		{`sum without (partition) (recsys_featurecompute_consumer_lag) unless count(foo:bar_total) > 1e3`, []string{"recsys_featurecompute_consumer_lag", "foo:bar_total"}},
	}
	for _, c := range cases {
		got, err := promqlMetrics(c.expr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("promqlMetrics(%q) = %q, %v; want %q", c.expr, got, err, c.want)
		}
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b}`, `x]`} {
		if _, err := promqlMetrics(bad); err == nil {
			t.Errorf("promqlMetrics(%q) = nil error, want one", bad)
		}
	}
}

// registeredMetrics returns the metric names the Go sources under libs/ and
// services/ register with the Prometheus client (the Name, with Namespace
// and Subsystem, of every prometheus.*Opts literal outside tests), with the
// _bucket, _sum and _count series of histograms and summaries.
func registeredMetrics(root string) (map[string]bool, error) {
	const promPkg = "github.com/prometheus/client_golang/prometheus"
	suffixes := map[string][]string{
		"CounterOpts": {""}, "GaugeOpts": {""},
		"HistogramOpts": {"_bucket", "_sum", "_count"},
		"SummaryOpts":   {"", "_sum", "_count"},
	}
	names := map[string]bool{}
	var errs []error
	for _, dir := range []string{"libs", "services"} {
		err := filepath.WalkDir(filepath.Join(root, dir), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() && (d.Name() == "testdata" || d.Name() == "node_modules") {
				return filepath.SkipDir
			}
			if d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return nil
			}
			fset := token.NewFileSet()
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			local := ""
			for _, imp := range f.Imports {
				if imp.Path.Value == strconv.Quote(promPkg) {
					local = "prometheus"
					if imp.Name != nil {
						local = imp.Name.Name
					}
				}
			}
			if local == "" {
				return nil
			}
			ast.Inspect(f, func(n ast.Node) bool {
				lit, ok := n.(*ast.CompositeLit)
				sel, isSel := typeSelector(lit, ok)
				pkg, opts, _ := strings.Cut(sel, ".")
				if !isSel || pkg != local || suffixes[opts] == nil {
					return true
				}
				parts := map[string]string{}
				for _, e := range lit.Elts {
					kv, ok := e.(*ast.KeyValueExpr)
					if !ok {
						continue
					}
					key, ok := kv.Key.(*ast.Ident)
					if !ok || (key.Name != "Name" && key.Name != "Namespace" && key.Name != "Subsystem") {
						continue
					}
					s, ok := stringLit(kv.Value)
					if !ok {
						errs = append(errs, fmt.Errorf("%s: prometheus.%s %s is not a string literal: the dashboard check cannot see it", fset.Position(kv.Pos()), opts, key.Name))
					}
					parts[key.Name] = s
				}
				var full []string
				for _, k := range []string{"Namespace", "Subsystem", "Name"} {
					if parts[k] != "" {
						full = append(full, parts[k])
					}
				}
				for _, suffix := range suffixes[opts] {
					names[strings.Join(full, "_")+suffix] = true
				}
				return true
			})
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	return names, errors.Join(errs...)
}

// provisionedDatasources returns the uids of the data sources Grafana is
// provisioned with, checking that each points at a service of the file.
func provisionedDatasources(root string) (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(root, datasourcesDir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return nil, fmt.Errorf("no data sources in %s (%v)", datasourcesDir, err)
	}
	uids := map[string]bool{}
	for _, f := range files {
		var doc struct {
			APIVersion  int `json:"apiVersion"`
			Datasources []struct {
				Name      string         `json:"name"`
				UID       string         `json:"uid"`
				Type      string         `json:"type"`
				Access    string         `json:"access"`
				URL       string         `json:"url"`
				IsDefault bool           `json:"isDefault"`
				Editable  bool           `json:"editable"`
				JSONData  map[string]any `json:"jsonData"`
			} `json:"datasources"`
		}
		b, err := os.ReadFile(f)
		if err == nil {
			err = yaml.UnmarshalStrict(b, &doc)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
		for _, d := range doc.Datasources {
			if d.UID == "" {
				return nil, fmt.Errorf("%s: data source %s has no uid", f, d.Name)
			}
			uids[d.UID] = true
		}
	}
	return uids, nil
}

// grafanaMountErrors checks that the Grafana service mounts the data
// sources, the dashboard provider and the dashboards where the provider
// looks for them.
func grafanaMountErrors(root string, p *types.Project) []error {
	g, ok := p.Services["grafana"]
	if !ok {
		return []error{errors.New("no service grafana")}
	}
	mounted := func(rel string) string {
		for _, v := range g.Volumes {
			if v.Source == filepath.Join(root, rel) && v.ReadOnly {
				return v.Target
			}
		}
		return ""
	}
	var errs []error
	if t := mounted(datasourcesDir); t != "/etc/grafana/provisioning/datasources" {
		errs = append(errs, fmt.Errorf("service grafana: %s mounted at %q, want /etc/grafana/provisioning/datasources, read-only", datasourcesDir, t))
	}
	if t := mounted(dashboardProvDir); t != "/etc/grafana/provisioning/dashboards" {
		errs = append(errs, fmt.Errorf("service grafana: %s mounted at %q, want /etc/grafana/provisioning/dashboards, read-only", dashboardProvDir, t))
	}
	files, _ := filepath.Glob(filepath.Join(root, dashboardProvDir, "*.yaml"))
	dashboards := mounted(dashboardsDir)
	var paths []string
	for _, f := range files {
		var doc struct {
			APIVersion int `json:"apiVersion"`
			Providers  []struct {
				Name            string `json:"name"`
				Folder          string `json:"folder"`
				Type            string `json:"type"`
				DisableDeletion bool   `json:"disableDeletion"`
				AllowUIUpdates  bool   `json:"allowUiUpdates"`
				Options         struct {
					Path string `json:"path"`
				} `json:"options"`
			} `json:"providers"`
		}
		b, err := os.ReadFile(f)
		if err == nil {
			err = yaml.UnmarshalStrict(b, &doc)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", f, err))
			continue
		}
		for _, pr := range doc.Providers {
			paths = append(paths, pr.Options.Path)
		}
	}
	if dashboards == "" || !slices.Contains(paths, dashboards) {
		errs = append(errs, fmt.Errorf("service grafana: %s mounted at %q, but the dashboard providers read %q", dashboardsDir, dashboards, paths))
	}
	if home := g.Environment["GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"]; home != nil && dashboards != "" {
		rel, err := filepath.Rel(dashboards, *home)
		if _, statErr := os.Stat(filepath.Join(root, dashboardsDir, rel)); err != nil || statErr != nil {
			errs = append(errs, fmt.Errorf("service grafana: home dashboard %s is not a dashboard of %s", *home, dashboardsDir))
		}
	}
	return errs
}

// TestComposeCheckersReject breaks docker-compose.yml and prometheus.yml in
// the ways the checks above exist for, and shows each check failing.
func TestComposeCheckersReject(t *testing.T) {
	root := repoRoot(t)
	content := string(readRepoFile(t, composeFile))
	issued, err := makeCertsServices(root)
	if err != nil {
		t.Fatal(err)
	}
	flagErrs := func(p *types.Project, bins []composeBinary) []error {
		var errs []error
		for _, b := range bins {
			errs = append(errs, b.flagErrs...)
		}
		return errs
	}
	ports := func(p *types.Project, bins []composeBinary) []error { return composePortErrors(root, p, bins) }
	addresses := func(p *types.Project, bins []composeBinary) []error { return composeAddressErrors(p, bins) }
	tls := func(p *types.Project, bins []composeBinary) []error { return composeTLSErrors(root, p, bins, issued) }
	builds := func(p *types.Project, _ []composeBinary) []error { return composeBuildErrors(root, p) }
	telemetry := func(p *types.Project, bins []composeBinary) []error { return composeTelemetryErrors(root, p, bins) }
	gpu := func(_ *types.Project, bins []composeBinary) []error { return composeGPUErrors(bins) }
	registry := func(_ *types.Project, bins []composeBinary) []error { return composeRegistryErrors(bins) }
	hardening := func(_ *types.Project, bins []composeBinary) []error { return composeHardeningErrors(bins) }
	prometheus := func(p *types.Project, bins []composeBinary) []error {
		cfg := strings.Replace(string(readRepoFile(t, prometheusFile)), "port: 8095", "port: 9095", 1)
		return prometheusErrors(root, p, bins, []byte(cfg))
	}
	cases := []struct {
		name, old, new string
		check          func(*types.Project, []composeBinary) []error
	}{
		{"env that sets no flag", "RECSYS_REDIS: redis:6379", "RECSYS_REDIS_ADDR: redis:6379", flagErrs},
		{"arg the binary rejects", `["-execution-provider=cpu"]`, `["-execution-provider", "cpu", "extra"]`, flagErrs},
		{"published port nobody listens on", `"127.0.0.1:8091:8091"`, `"127.0.0.1:8091:8096"`, ports},
		{"health check on the gRPC port", "/dev/tcp/127.0.0.1/8092", "/dev/tcp/127.0.0.1/9092", ports},
		{"host port published twice", `"127.0.0.1:9193:9093"`, `"127.0.0.1:9093:9093"`, ports},
		{"port open beyond loopback", `"127.0.0.1:8080:8080"`, `"8080:8080"`, ports},
		{"gRPC client on the HTTP port", "RECSYS_USERFEATURES_ADDR: userfeatures:9091", "RECSYS_USERFEATURES_ADDR: userfeatures:8091", addresses},
		{"gRPC-Web to the gRPC port", "RECSYS_RANKING_HTTP: ranking:8093", "RECSYS_RANKING_HTTP: ranking:9093", addresses},
		{"address of no service", "RECSYS_KAFKA: kafka:9092", "RECSYS_KAFKA: kafak:9092", addresses},
		{"another service's key", "RECSYS_TLS_KEY: /certs/feedback-key.pem", "RECSYS_TLS_KEY: /certs/ranking-key.pem", tls},
		{"certificate volume nobody fills", "- certs-web:/out/web\n", "", tls},
		{"plaintext service", "RECSYS_TLS_CA: /certs/ca.pem\n    volumes:\n      - certs-userfeatures", "RECSYS_LOG_LEVEL: info\n    volumes:\n      - certs-userfeatures", tls},
		{"Dockerfile missing", "dockerfile: services/feedback/Dockerfile", "dockerfile: services/feedback/Dockerfile.nope", builds},
		{"build arg the Dockerfile lacks", "ORT_GPU_URL: ${RECSYS_ORT_GPU_URL:-}", "ORT_URL: ${RECSYS_ORT_GPU_URL:-}", builds},
		{"target stage missing", "target: cpu", "target: cpu-only", builds},
		{"traces to nowhere", "OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4317", "OTEL_EXPORTER_OTLP_ENDPOINT: http://otel-collector:4318", telemetry},
		{"GPU ranking on auto", `["-execution-provider=cuda"]`, `["-execution-provider=auto"]`, gpu},
		{"ranking writes the registry", "- models:/models:ro", "- models:/models", registry},
		{"writable root filesystem", "  read_only: true\n  tmpfs", "  read_only: false\n  tmpfs", hardening},
		{"Prometheus scrapes the gRPC port", "", "", prometheus},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			broken := content
			if c.old != "" {
				if !strings.Contains(content, c.old) {
					t.Fatalf("%s does not contain %q any more: update this case", composeFile, c.old)
				}
				broken = strings.Replace(content, c.old, c.new, 1)
			}
			p, err := loadCompose(root, []byte(broken), "*")
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			bins, err := composeBinaries(p)
			if err != nil {
				t.Fatal(err)
			}
			if errs := c.check(p, bins); len(errs) == 0 {
				t.Errorf("replacing %q with %q: no error, want one", c.old, c.new)
			}
		})
	}
}
