package local

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"

	"github.com/recsys/recsys/libs/certs"
	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// TestTLSEveryHop runs the platform with -tls, and with a TLS-only Redis
// that lets in only its ACL user when one can be had (testenv): every hop
// is checked. The edge answers over HTTPS (its plaintext port only
// redirects), a gRPC client without a certificate is refused by ranking
// and the feature services while one with a certificate of the run's CA
// gets in, the feature services' REST and gRPC-Web need that certificate
// too, and REST through the edge (edge → ranking → feature services →
// Redis) answers with features, not degraded.
func TestTLSEveryHop(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	models, certDir := ctrModel(t), t.TempDir()
	var cfg Config
	fs := flag.NewFlagSet("recsys", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	free := testenv.FreePorts(t, 2*len(cfg.services()))
	args := []string{"-tls", "-tls-dir=" + certDir, "-kafka=embedded", "-simulate=false", "-ranking.model-root=" + models, "-ranking.ready-interval=50ms"}
	redisTLS := false
	if _, err := exec.LookPath("redis-server"); err == nil || os.Getenv("RECSYS_TEST_REDIS_TLS_ADDR") != "" {
		r := testenv.NewSecureRedis(t)
		args = append(args, "-redis="+r.Addr, "-redis-tls", "-redis-ca="+r.CAFile, "-redis-user="+r.User, "-redis-password="+r.Password)
		redisTLS = true
	} else {
		t.Log("no redis-server and no RECSYS_TEST_REDIS_TLS_ADDR: Redis is the embedded one, without TLS")
		args = append(args, "-redis=embedded")
	}
	addr := map[string][2]string{}
	for i, s := range cfg.services() {
		addr[s.name] = [2]string{fmt.Sprintf("127.0.0.1:%d", free[2*i]), fmt.Sprintf("127.0.0.1:%d", free[2*i+1])}
		args = append(args, "-"+s.name+".grpc-addr="+addr[s.name][0], "-"+s.name+".http-addr="+addr[s.name][1])
	}
	for _, up := range []string{"userfeatures", "itemfeatures", "ranking", "feedback"} {
		args = append(args, "-web."+up+"-grpc="+addr[up][0], "-web."+up+"-http="+addr[up][1])
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testenv.DiscardLogger()) }()
	defer func() { cancel(); <-done }()
	testenv.WaitForPort(t, addr["ranking"][0], 30*time.Second)

	files := serving.TLSFiles{CertFile: filepath.Join(certDir, "simulator.pem"), KeyFile: filepath.Join(certDir, "simulator-key.pem"), CAFile: filepath.Join(certDir, "ca.pem")}
	for _, svc := range []string{"ranking", "userfeatures", "itemfeatures"} {
		testenv.WaitForPort(t, addr[svc][0], 30*time.Second)
		plain, _ := serving.Dial(addr[svc][0], serving.ClientConfig{DefaultTimeout: 2 * time.Second})
		defer plain.Close()
		if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
			t.Errorf("%s: a gRPC client without TLS: %v, want the handshake refused", svc, err)
		}
		good, _ := serving.Dial(addr[svc][0], serving.ClientConfig{TLS: files, ServerName: "localhost", DefaultTimeout: 2 * time.Second})
		defer good.Close()
		if _, err := healthpb.NewHealthClient(good).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("%s: a gRPC client with the run's certificate: %v", svc, err)
		}
	}

	// HTTPS clients: one that trusts the run's CA only, and one that also
	// presents a certificate of it.
	caOnly, err := certs.ClientConfig(files.CAFile, "", "")
	if err != nil {
		t.Fatal(err)
	}
	withCert, err := certs.ClientConfig(files.CAFile, files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	client := func(tc *tls.Config) *http.Client {
		return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: tc},
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	}
	get := func(c *http.Client, url string) (int, string) {
		resp, err := c.Get(url)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Location")
	}
	// Feature services' REST: HTTPS, and only with a client certificate;
	// plaintext is redirected, never served.
	for _, svc := range []string{"userfeatures", "itemfeatures"} {
		path := map[string]string{"userfeatures": "/v1/users/u1/features", "itemfeatures": "/v1/items/i1/features"}[svc]
		if code, _ := get(client(caOnly), "https://"+addr[svc][1]+path); code != http.StatusUnauthorized {
			t.Errorf("%s REST over HTTPS without a client certificate = HTTP %d, want 401", svc, code)
		}
		if code, _ := get(client(withCert), "https://"+addr[svc][1]+path); code != http.StatusOK {
			t.Errorf("%s REST over HTTPS with the run's certificate = HTTP %d, want 200", svc, code)
		}
		if code, loc := get(client(nil), "http://"+addr[svc][1]+path); code != http.StatusPermanentRedirect || !strings.HasPrefix(loc, "https://") {
			t.Errorf("%s REST over plaintext = HTTP %d to %q, want a redirect to https", svc, code, loc)
		}
		if code, _ := get(client(nil), "http://"+addr[svc][1]+"/livez"); code != http.StatusOK {
			t.Errorf("%s /livez over plaintext (probes) = HTTP %d, want 200", svc, code)
		}
	}
	// gRPC-Web as the UI sends it: through the edge over HTTPS without a
	// certificate (the edge passes it on with its own), and refused
	// straight at the feature service without one.
	grpcWeb := func(c *http.Client, base string) string {
		body, _ := proto.Marshal(&userfeaturesv1.GetUserFeatureRequest{UserId: "u1"})
		frame := append(binary.BigEndian.AppendUint32([]byte{0}, uint32(len(body))), body...)
		req, _ := http.NewRequest(http.MethodPost, base+"/recsys.userfeatures.v1.UserFeatureService/GetUserFeature", bytes.NewReader(frame))
		req.Header.Set("Content-Type", "application/grpc-web+proto")
		req.Header.Set("X-Grpc-Web", "1")
		resp, err := c.Do(req)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		if st := resp.Header.Get("Grpc-Status"); st != "" {
			return "grpc-status " + st
		}
		if i := bytes.Index(raw, []byte("grpc-status:")); i >= 0 {
			return "grpc-status " + strings.TrimSpace(strings.SplitN(string(raw[i+len("grpc-status:"):]), "\r\n", 2)[0])
		}
		return fmt.Sprintf("HTTP %d without a grpc-status", resp.StatusCode)
	}
	if got := grpcWeb(client(caOnly), "https://"+addr["web"][1]); got != "grpc-status 0" {
		t.Errorf("gRPC-Web GetUserFeature through the edge over HTTPS: %s, want grpc-status 0", got)
	}
	if got := grpcWeb(client(caOnly), "https://"+addr["userfeatures"][1]); got != "grpc-status 16" {
		t.Errorf("gRPC-Web GetUserFeature straight to userfeatures without a client certificate: %s, want grpc-status 16 (Unauthenticated)", got)
	}
	// The edge: browsers reach it over HTTPS without a certificate; its
	// plaintext port only redirects.
	if code, loc := get(client(nil), "http://"+addr["web"][1]+"/"); code != http.StatusPermanentRedirect || !strings.HasPrefix(loc, "https://") {
		t.Errorf("the edge over plaintext = HTTP %d to %q, want a redirect to https", code, loc)
	}
	url := "https://" + addr["web"][1] + "/v1/users/u1/recommendations"
	var code int
	var body struct{ FeaturesDegraded bool }
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		resp, err := client(caOnly).Get(url)
		if err == nil {
			code = resp.StatusCode
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if code == http.StatusOK {
				break
			}
		}
	}
	// Not degraded: ranking reached the feature services over mTLS, and
	// they their Redis (over TLS as its ACL user, when redisTLS).
	if code != http.StatusOK || body.FeaturesDegraded {
		t.Errorf("GET %s through the edge = HTTP %d, degraded %v; want 200 with features (ranking → features over mTLS → Redis, TLS %v)", url, code, body.FeaturesDegraded, redisTLS)
	}
	t.Logf("edge over HTTPS: HTTP %d, features degraded %v; Redis over TLS with an ACL user: %v", code, body.FeaturesDegraded, redisTLS)
}
