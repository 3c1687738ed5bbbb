package local

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/recsys/recsys/libs/modelrt"
	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// TestTLSEveryHop runs the platform with -tls: a client without a
// certificate is refused, one with a certificate of the run's CA gets in,
// and REST through the edge (edge → ranking → feature services, all mTLS)
// answers.
func TestTLSEveryHop(t *testing.T) {
	if err := modelrt.Init(modelrt.LibraryPath()); err != nil {
		t.Skipf("no ONNX Runtime: %v", err)
	}
	models, certDir := t.TempDir(), t.TempDir()
	l := modeltest.Logistic{W: []float32{1}}
	if err := modeltest.Publish(models, "ctr", "v1", l.ONNX(), l.Metadata("ctr", "v1", time.Now(),
		[]map[string]any{{"name": "ctr", "source": "item.ctr", "default": 0.05}})); err != nil {
		t.Fatal(err)
	}
	var cfg Config
	fs := flag.NewFlagSet("recsys", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	free := testenv.FreePorts(t, 2*len(cfg.services()))
	args := []string{"-tls", "-tls-dir=" + certDir, "-redis=embedded", "-kafka=embedded", "-simulate=false", "-ranking.model-root=" + models, "-ranking.ready-interval=50ms"}
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

	plain, _ := serving.Dial(addr["ranking"][0], serving.ClientConfig{DefaultTimeout: 2 * time.Second})
	defer plain.Close()
	if _, err := healthpb.NewHealthClient(plain).Check(ctx, &healthpb.HealthCheckRequest{}); status.Code(err) != codes.Unavailable {
		t.Errorf("a client without a certificate: %v, want the handshake refused", err)
	}
	files := serving.TLSFiles{CertFile: filepath.Join(certDir, "simulator.pem"), KeyFile: filepath.Join(certDir, "simulator-key.pem"), CAFile: filepath.Join(certDir, "ca.pem")}
	good, _ := serving.Dial(addr["ranking"][0], serving.ClientConfig{TLS: files, ServerName: "localhost", DefaultTimeout: 2 * time.Second})
	defer good.Close()
	if _, err := healthpb.NewHealthClient(good).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("a client with the run's certificate: %v", err)
	}
	url := "http://" + addr["web"][1] + "/v1/users/u1/recommendations"
	var code int
	var body struct{ FeaturesDegraded bool }
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			code = resp.StatusCode
			json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if code == http.StatusOK {
				break
			}
		}
	}
	// Not degraded: ranking reached the feature services over mTLS.
	if code != http.StatusOK || body.FeaturesDegraded {
		t.Errorf("GET %s through the edge = HTTP %d, degraded %v; want 200 with features (ranking → features over mTLS)", url, code, body.FeaturesDegraded)
	}
}
