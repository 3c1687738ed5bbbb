package manifeststest

import (
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/types"
)

// TestComposeLoads: docker-compose.yml loads with the compose-spec library
// (schema, interpolation, references) with no profile (docker compose up),
// with the gpu profile and with all of them; without a profile nothing
// reserves a device, so docker compose up works on a machine without one.
func TestComposeLoads(t *testing.T) {
	root := repoRoot(t)
	for _, profiles := range [][]string{nil, {"gpu"}, {"*"}} {
		p, err := loadCompose(root, readRepoFile(t, composeFile), profiles...)
		if err != nil {
			t.Fatalf("profiles %q: %v", profiles, err)
		}
		for name, s := range p.Services {
			if d := s.Deploy; len(profiles) == 0 && d != nil && d.Resources.Reservations != nil && len(d.Resources.Reservations.Devices) > 0 {
				t.Errorf("service %s reserves devices without a profile", name)
			}
		}
	}
}

// TestComposeImages: every recsys service is built from the repository
// root with services/<binary>/Dockerfile as image recsys/<binary>; the
// build context leaves out private keys, models, data and other bulk; the
// ranking image's ONNX Runtime is the one make ort fetches.
func TestComposeImages(t *testing.T) {
	root := repoRoot(t)
	for _, w := range composeWorkloads(composeProject(t)) {
		s, bin := w.compose, binaryOf(w.compose.Image)
		if b := s.Build; b != nil && (b.Context != root || filepath.ToSlash(b.Dockerfile) != "services/"+bin+"/Dockerfile") {
			t.Errorf("%s: build %s %s, want the repository root and services/%s/Dockerfile", w.owner, b.Context, b.Dockerfile, bin)
		}
	}
	ignored := strings.Fields(string(readRepoFile(t, ".dockerignore")))
	for _, keep := range []string{"certs", "models", "data", ".git", "node_modules", ".cache"} {
		if !slices.ContainsFunc(ignored, func(l string) bool { return strings.Trim(l, "/") == keep }) {
			t.Errorf(".dockerignore does not leave out %s: private keys, models or hundreds of MB would reach the builder", keep)
		}
	}
	makefile, dockerfile := string(readRepoFile(t, "Makefile")), string(readRepoFile(t, "services/ranking/Dockerfile"))
	for _, v := range []string{"ORT_VERSION", "ORT_SHA256"} {
		m := regexp.MustCompile(`(?m)^` + v + `\s*:?=\s*(\S+)`).FindStringSubmatch(makefile)
		if m == nil || !strings.Contains(dockerfile, "ARG "+v+"="+m[1]+"\n") {
			t.Errorf("services/ranking/Dockerfile: ARG %s differs from the Makefile's %v: keep them in step", v, m)
		}
	}
}

// TestComposeTLS: every recsys server runs mTLS with its own certificate
// (certs/<service>.pem, which make certs issues), key and the CA, from a
// read-only volume that the one-shot certs service fills for that identity
// alone and that the server waits for; the certs service reads certs/
// read-only without creating it.
func TestComposeTLS(t *testing.T) {
	root := repoRoot(t)
	p := composeProject(t)
	dir := t.TempDir()
	cmd := exec.Command("go", "run", "./libs/certs/cmd/certs", "-dir", dir, "-valid", "1h")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("make certs' command: %v\n%s", err, out)
	}
	certsSvc, ok := p.Services["certs"]
	if !ok {
		t.Fatal("no service certs")
	}
	installed := map[string]string{} // volume -> identity
	in := false
	for _, v := range certsSvc.Volumes {
		if id, ok := strings.CutPrefix(v.Target, "/out/"); ok && v.Type == types.VolumeTypeVolume {
			installed[v.Source] = id
		}
		in = in || (v.Source == filepath.Join(root, "certs") && v.Target == "/in" && v.ReadOnly && v.Bind != nil && !bool(v.Bind.CreateHostPath))
	}
	if !in {
		t.Error("service certs: certs/ is not mounted read-only at /in with create_host_path false")
	}
	for _, w := range composeWorkloads(p) {
		if !w.serving {
			continue
		}
		fs, _ := binaryFlags(binaryOf(w.compose.Image), w.containers[0], nil, w.resolve, nil)
		cert, key, ca := fs.Lookup("tls-cert").Value.String(), fs.Lookup("tls-key").Value.String(), fs.Lookup("tls-ca").Value.String()
		id, d := strings.TrimSuffix(path.Base(cert), ".pem"), path.Dir(cert)
		if _, err := os.Stat(filepath.Join(dir, id+".pem")); err != nil || cert == "" || key != path.Join(d, id+"-key.pem") || ca != path.Join(d, "ca.pem") {
			t.Errorf("%s: -tls-cert %q -tls-key %q -tls-ca %q: want <dir>/<service>.pem, -key.pem and ca.pem as make certs issues them", w.owner, cert, key, ca)
			continue
		}
		if names := append([]string{w.compose.Name}, aliases(w.compose)...); !slices.Contains(names, id) {
			t.Errorf("%s: presents the certificate of %s, but is reached as %v", w.owner, id, names)
		}
		i := slices.IndexFunc(w.compose.Volumes, func(v types.ServiceVolumeConfig) bool { return v.Target == d })
		if i < 0 || !w.compose.Volumes[i].ReadOnly || installed[w.compose.Volumes[i].Source] != id || w.compose.DependsOn["certs"].Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: want a read-only volume at %s that the certs service fills with %s's certificate, and to wait for it", w.owner, d, id)
		}
	}
}

func aliases(s *types.ServiceConfig) []string {
	var out []string
	for _, n := range s.Networks {
		if n != nil {
			out = append(out, n.Aliases...)
		}
	}
	return out
}

// TestComposeTelemetry: every recsys server exports traces under its own
// service name to a port that a service of the file listens on.
func TestComposeTelemetry(t *testing.T) {
	p := composeProject(t)
	for _, w := range composeWorkloads(p) {
		if !w.serving {
			continue
		}
		env := w.compose.Environment
		u, err := url.Parse(ptrValue(env["OTEL_EXPORTER_OTLP_ENDPOINT"]))
		target, ok := p.Services[u.Hostname()]
		ports, _ := composePorts(target)
		if err != nil || !ok || !slices.ContainsFunc(ports, func(n uint32) bool { return u.Port() == strconv.Itoa(int(n)) }) || ptrValue(env["OTEL_SERVICE_NAME"]) == "" {
			t.Errorf("%s: OTEL_EXPORTER_OTLP_ENDPOINT %q and OTEL_SERVICE_NAME %q: want a port of a service of the file, and a name", w.owner, u, ptrValue(env["OTEL_SERVICE_NAME"]))
		}
	}
}
