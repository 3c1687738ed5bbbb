package local

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/recsys/recsys/libs/modelrt/modeltest"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// TestEveryServiceServesHealthOnEveryProtocol starts the whole platform on
// free ports and asks each service for its health over native gRPC,
// gRPC-Web and REST, and checks that unbuilt RPCs say Unimplemented.
func TestEveryServiceServesHealthOnEveryProtocol(t *testing.T) {
	models := ctrModel(t)
	svc := startPlatform(t, "-ranking.model-root="+models)

	for name, p := range svc {
		t.Run(name, func(t *testing.T) {
			grpcAddr := fmt.Sprintf("127.0.0.1:%d", p.grpc)
			base := fmt.Sprintf("http://127.0.0.1:%d", p.http)
			testenv.WaitForPort(t, grpcAddr, 10*time.Second)
			testenv.WaitForPort(t, fmt.Sprintf("127.0.0.1:%d", p.http), 10*time.Second)

			conn, err := serving.Dial(grpcAddr, serving.ClientConfig{})
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			// Ranking is ready once its model is warm: wait for that.
			var h *healthpb.HealthCheckResponse
			for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
				h, err = healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{})
				if err == nil && h.GetStatus() == healthpb.HealthCheckResponse_SERVING {
					break
				}
			}
			if err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
				t.Errorf("gRPC health = %v, %v; want SERVING", h, err)
			}

			if name != "web" { // the web edge passes gRPC-Web on to the services instead
				web := &healthpb.HealthCheckResponse{}
				code, msg := testenv.GRPCWeb(t, base+"/grpc.health.v1.Health/Check", "", &healthpb.HealthCheckRequest{}, web)
				if code != codes.OK || web.GetStatus() != healthpb.HealthCheckResponse_SERVING {
					t.Errorf("gRPC-Web health = %v %q %v; want OK SERVING", code, msg, web)
				}
				var rest struct{ Status string }
				getJSON(t, base+"/healthz", http.StatusOK, &rest)
				if rest.Status != "SERVING" {
					t.Errorf("REST /healthz status = %q, want SERVING", rest.Status)
				}
			}
			var ready struct{ Ready bool }
			getJSON(t, base+"/readyz", http.StatusOK, &ready)
			if !ready.Ready {
				t.Error("/readyz says not ready")
			}
		})
	}

	// Through the edge on the web port: REST reaches ranking, which ranks
	// with the model (the feature services answer from the embedded Redis).
	var list struct {
		Models []struct{ Version, State, Provider string }
	}
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/models", svc["web"].http), http.StatusOK, &list)
	if len(list.Models) != 1 || list.Models[0].State != "MODEL_STATE_READY" || list.Models[0].Provider != "cpu" {
		t.Errorf("GET /v1/models via the edge = %+v, want v1 ready on cpu", list)
	}
	var recs struct {
		ModelVersion string
		RequestID    string `json:"requestId"`
	}
	getJSON(t, fmt.Sprintf("http://127.0.0.1:%d/v1/users/u1/recommendations", svc["web"].http), http.StatusOK, &recs)
	if recs.RequestID == "" {
		t.Errorf("GET recommendations via the edge = %+v, want a request id", recs)
	}
}

type ports struct{ grpc, http int }

// ctrModel publishes a model one feature wide (the item's ctr) as ctr/v1
// into a fresh registry folder, and returns the folder.
func ctrModel(t *testing.T) string {
	t.Helper()
	models := t.TempDir()
	l := modeltest.Logistic{W: []float32{1}}
	if err := modeltest.Publish(models, "ctr", "v1", l.ONNX(), l.Metadata("ctr", "v1", time.Now(),
		[]map[string]any{{"name": "ctr", "source": "item.ctr", "default": 0.05}})); err != nil {
		t.Fatal(err)
	}
	return models
}

// startPlatform runs the whole platform in-process on free ports, with
// the embedded Redis and Kafka and no simulated traffic, until the test
// ends; args add flags.
func startPlatform(t *testing.T, args ...string) map[string]ports {
	t.Helper()
	var cfg Config
	fs := flag.NewFlagSet("recsys", flag.ContinueOnError)
	cfg.RegisterFlags(fs)
	svc := map[string]ports{}
	args = append([]string{"-redis=embedded", "-simulate=false", "-ranking.model-scan-interval=50ms", "-ranking.ready-interval=50ms"}, args...)
	free := testenv.FreePorts(t, 2*len(cfg.services())+1)
	args = append(args, fmt.Sprintf("-kafka=embedded://127.0.0.1:%d", free[len(free)-1]))
	for i, s := range cfg.services() {
		p := ports{free[2*i], free[2*i+1]}
		svc[s.name] = p
		args = append(args, fmt.Sprintf("-%s.grpc-addr=127.0.0.1:%d", s.name, p.grpc), fmt.Sprintf("-%s.http-addr=127.0.0.1:%d", s.name, p.http))
	}
	for _, up := range []string{"userfeatures", "itemfeatures", "ranking", "feedback"} {
		args = append(args, fmt.Sprintf("-web.%s-grpc=127.0.0.1:%d", up, svc[up].grpc), fmt.Sprintf("-web.%s-http=127.0.0.1:%d", up, svc[up].http))
	}
	if err := fs.Parse(args); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Run(ctx, cfg, testenv.DiscardLogger()) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return svc
}

func getJSON(t *testing.T, url string, wantCode int, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantCode {
		body, _ := io.ReadAll(resp.Body)
		t.Fatalf("GET %s = HTTP %d %s, want %d", url, resp.StatusCode, body, wantCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}
