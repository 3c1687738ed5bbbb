package serving_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/testing/protocmp"

	feedbackv1 "github.com/recsys/recsys/gen/go/recsys/feedback/v1"
	"github.com/recsys/recsys/libs/certs"
	"github.com/recsys/recsys/libs/serving"
	"github.com/recsys/recsys/libs/testenv"
)

// testFeedback is a FeedbackService whose behaviour the events choose:
// user "panic" panics, user "slow" blocks until release is closed. It
// checks nothing itself: the contract's rules are the server's to enforce.
type testFeedback struct {
	feedbackv1.UnimplementedFeedbackServiceServer
	started chan struct{}
	release chan struct{}
	calls   atomic.Int64
}

func (f *testFeedback) RecordEvents(ctx context.Context, req *feedbackv1.RecordEventsRequest) (*feedbackv1.RecordEventsResponse, error) {
	f.calls.Add(1)
	switch req.GetEvents()[0].GetUserId() {
	case "panic":
		var m map[string]int
		m["boom"]++ // a nil map write: a real runtime panic
	case "slow":
		close(f.started)
		<-f.release
	}
	return &feedbackv1.RecordEventsResponse{AcceptedCount: int32(len(req.GetEvents()))}, nil
}

// testServer is testFeedback run by testenv.Serve.
type testServer struct {
	*testenv.Server
	fb *testFeedback
}

// startServer serves testFeedback with a 64 KiB request limit and one
// allowed browser origin; mutate, when not nil, changes the config.
func startServer(t testing.TB, mutate func(*serving.Config)) *testServer {
	t.Helper()
	fb := &testFeedback{started: make(chan struct{}), release: make(chan struct{})}
	srv := testenv.Serve(t, func(srv *serving.Server) {
		feedbackv1.RegisterFeedbackServiceServer(srv.GRPC(), fb)
		if err := srv.Publish(feedbackv1.File_recsys_feedback_v1_feedback_proto, feedbackv1.RegisterFeedbackServiceHandler); err != nil {
			t.Fatal(err)
		}
	}, func(c *serving.Config) {
		c.AllowedOrigins = []string{"https://app.example"}
		c.MaxRequestBytes = 64 << 10
		c.ShutdownTimeout = 10 * time.Second
		c.ReadyInterval = 50 * time.Millisecond
		if mutate != nil {
			mutate(c)
		}
	})
	return &testServer{Server: srv, fb: fb}
}

func (ts *testServer) client(t testing.TB, cfg serving.ClientConfig) feedbackv1.FeedbackServiceClient {
	t.Helper()
	conn, err := serving.Dial(ts.GRPCAddr().String(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return feedbackv1.NewFeedbackServiceClient(conn)
}

func events(users ...string) *feedbackv1.RecordEventsRequest {
	req := &feedbackv1.RecordEventsRequest{}
	for i, u := range users {
		req.Events = append(req.Events, &feedbackv1.Event{
			EventId: "e" + strconv.Itoa(i), Type: feedbackv1.EventType_EVENT_TYPE_CLICK, UserId: u, ItemId: "i1",
		})
	}
	return req
}

func TestSameAnswerOnEveryProtocol(t *testing.T) {
	ts := startServer(t, nil)
	req := events("u1", "u2")
	ctx := context.Background()

	viaGRPC, err := ts.client(t, serving.ClientConfig{}).RecordEvents(ctx, req)
	if err != nil {
		t.Fatalf("gRPC RecordEvents: %v", err)
	}

	body, _ := protojson.Marshal(req)
	hresp, err := http.Post(ts.URL("/v1/events"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	raw, _ := io.ReadAll(hresp.Body)
	if hresp.StatusCode != http.StatusOK {
		t.Fatalf("REST POST /v1/events = HTTP %d %s, want 200", hresp.StatusCode, raw)
	}
	viaREST := &feedbackv1.RecordEventsResponse{}
	if err := protojson.Unmarshal(raw, viaREST); err != nil {
		t.Fatalf("REST body %s: %v", raw, err)
	}

	viaWeb := &feedbackv1.RecordEventsResponse{}
	if code, msg := testenv.GRPCWeb(t, ts.URL("/recsys.feedback.v1.FeedbackService/RecordEvents"), "", req, viaWeb); code != codes.OK {
		t.Fatalf("gRPC-Web RecordEvents = %v %q, want OK", code, msg)
	}

	if viaGRPC.GetAcceptedCount() != 2 {
		t.Errorf("gRPC RecordEvents accepted %d, want 2", viaGRPC.GetAcceptedCount())
	}
	if d := cmp.Diff(viaGRPC, viaREST, protocmp.Transform()); d != "" {
		t.Errorf("REST differs from gRPC (-grpc +rest):\n%s", d)
	}
	if d := cmp.Diff(viaGRPC, viaWeb, protocmp.Transform()); d != "" {
		t.Errorf("gRPC-Web differs from gRPC (-grpc +web):\n%s", d)
	}
}

func TestInvalidArgumentOnEveryProtocol(t *testing.T) {
	ts := startServer(t, nil)
	empty := &feedbackv1.RecordEventsRequest{}

	_, err := ts.client(t, serving.ClientConfig{}).RecordEvents(context.Background(), empty)
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("gRPC RecordEvents(empty) = %v, want InvalidArgument", err)
	}

	hresp, err := http.Post(ts.URL("/v1/events"), "application/json", strings.NewReader(`{"events":[]}`))
	if err != nil {
		t.Fatal(err)
	}
	defer hresp.Body.Close()
	var st struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	if err := json.NewDecoder(hresp.Body).Decode(&st); err != nil {
		t.Fatalf("REST error body is not JSON: %v", err)
	}
	if hresp.StatusCode != http.StatusBadRequest || st.Code != int(codes.InvalidArgument) || !strings.Contains(st.Message, "events") {
		t.Errorf("REST POST /v1/events(empty) = HTTP %d %+v, want 400 with code 3 naming the field", hresp.StatusCode, st)
	}

	code, msg := testenv.GRPCWeb(t, ts.URL("/recsys.feedback.v1.FeedbackService/RecordEvents"), "", empty, &feedbackv1.RecordEventsResponse{})
	if code != codes.InvalidArgument || !strings.Contains(msg, "events") {
		t.Errorf("gRPC-Web RecordEvents(empty) = grpc-status %d %q, want 3 naming the field", code, msg)
	}
}

func TestCORS(t *testing.T) {
	ts := startServer(t, nil)
	for _, tc := range []struct {
		name, path, reqHeaders, origin string
		allowed                        bool
	}{
		{"gRPC-Web allowed origin", "/recsys.feedback.v1.FeedbackService/RecordEvents", "x-grpc-web,content-type", "https://app.example", true},
		{"gRPC-Web other origin", "/recsys.feedback.v1.FeedbackService/RecordEvents", "x-grpc-web,content-type", "https://evil.example", false},
		{"REST allowed origin", "/v1/events", "content-type", "https://app.example", true},
		{"REST other origin", "/v1/events", "content-type", "https://evil.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, ts.URL(tc.path), nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", "POST")
			req.Header.Set("Access-Control-Request-Headers", tc.reqHeaders)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			got := resp.Header.Get("Access-Control-Allow-Origin")
			if tc.allowed && got != tc.origin {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q, want %q", tc.origin, got, tc.origin)
			}
			if !tc.allowed && got != "" {
				t.Errorf("preflight from %s: Access-Control-Allow-Origin = %q, want none", tc.origin, got)
			}
		})
	}
}

func TestRequestSizeLimit(t *testing.T) {
	ts := startServer(t, nil)
	big := events("u1")
	big.Events[0].ItemId = strings.Repeat("x", 100<<10) // over the 64 KiB limit

	_, err := ts.client(t, serving.ClientConfig{}).RecordEvents(context.Background(), big)
	if status.Code(err) != codes.ResourceExhausted {
		t.Errorf("gRPC RecordEvents(100 KiB) = %v, want ResourceExhausted", err)
	}

	body, _ := protojson.Marshal(big)
	resp, err := http.Post(ts.URL("/v1/events"), "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("REST POST /v1/events(100 KiB) = HTTP %d, want 413", resp.StatusCode)
	}
}

func TestPanicBecomesInternal(t *testing.T) {
	ts := startServer(t, nil)
	c := ts.client(t, serving.ClientConfig{})
	_, err := c.RecordEvents(context.Background(), events("panic"))
	if status.Code(err) != codes.Internal {
		t.Fatalf("RecordEvents(panic) = %v, want Internal", err)
	}
	if _, err := c.RecordEvents(context.Background(), events("u1")); err != nil {
		t.Errorf("RecordEvents after a panic = %v, want the server still serving", err)
	}
	resp, err := http.Post(ts.URL("/v1/events"), "application/json", strings.NewReader(`{"events":[{"eventId":"e","type":"EVENT_TYPE_CLICK","userId":"panic","itemId":"i"}]}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError {
		t.Errorf("REST panic = HTTP %d, want 500", resp.StatusCode)
	}
}

func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	if err := certs.WriteFiles(dir, []string{"feedback", "ranking"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	other := t.TempDir()
	if err := certs.WriteFiles(other, []string{"ranking"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	files := func(d, svc string) serving.TLSFiles {
		return serving.TLSFiles{CertFile: filepath.Join(d, svc+".pem"), KeyFile: filepath.Join(d, svc+"-key.pem"), CAFile: filepath.Join(d, "ca.pem")}
	}
	ts := startServer(t, func(c *serving.Config) { c.TLS = files(dir, "feedback") })

	good := ts.client(t, serving.ClientConfig{TLS: files(dir, "ranking"), ServerName: "feedback", DefaultTimeout: 5 * time.Second})
	if _, err := good.RecordEvents(context.Background(), events("u1")); err != nil {
		t.Errorf("client with a certificate of our CA: %v, want success", err)
	}

	// Trusts the server but presents a certificate of another CA.
	foreign := serving.TLSFiles{CertFile: filepath.Join(other, "ranking.pem"), KeyFile: filepath.Join(other, "ranking-key.pem"), CAFile: filepath.Join(dir, "ca.pem")}
	for name, c := range map[string]serving.ClientConfig{
		"certificate of another CA": {TLS: foreign, ServerName: "feedback", DefaultTimeout: 2 * time.Second},
		"no certificate":            {DefaultTimeout: 2 * time.Second},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := ts.client(t, c).RecordEvents(context.Background(), events("u1"))
			if status.Code(err) != codes.Unavailable {
				t.Errorf("RecordEvents = %v, want the handshake to fail (Unavailable)", err)
			}
		})
	}

	// The HTTP port speaks HTTPS with the same certificate, and REST needs
	// a client certificate of the CA too (then it goes through the same
	// mTLS-protected server in memory); plaintext is refused.
	withCert, err := certs.ClientConfig(filepath.Join(dir, "ca.pem"), filepath.Join(dir, "ranking.pem"), filepath.Join(dir, "ranking-key.pem"))
	if err != nil {
		t.Fatal(err)
	}
	caOnly, err := certs.ClientConfig(filepath.Join(dir, "ca.pem"), "", "")
	if err != nil {
		t.Fatal(err)
	}
	httpsURL := strings.Replace(ts.URL("/v1/events"), "http://", "https://", 1)
	for _, tc := range []struct {
		name string
		url  string
		tls  *tls.Config
		want int
	}{
		{"HTTPS with a client certificate", httpsURL, withCert, http.StatusOK},
		{"HTTPS without a client certificate", httpsURL, caOnly, http.StatusUnauthorized},
		{"plaintext", ts.URL("/v1/events"), nil, http.StatusForbidden},
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: tc.tls}, Timeout: 5 * time.Second}
		resp, err := c.Post(tc.url, "application/json", strings.NewReader(`{"events":[{"eventId":"e","type":"EVENT_TYPE_CLICK","userId":"u1","itemId":"i"}]}`))
		if err != nil {
			t.Errorf("REST %s: %v", tc.name, err)
			continue
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("REST %s with mTLS on = HTTP %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// Probes and scrapers without certificates still reach health.
	if resp, err := http.Get(ts.URL("/livez")); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("GET /livez over plaintext with mTLS on = %v, %v; want 200", resp, err)
	} else {
		resp.Body.Close()
	}
}

func TestGracefulStop(t *testing.T) {
	ts := startServer(t, nil)
	conn, err := serving.Dial(ts.GRPCAddr().String(), serving.ClientConfig{DefaultTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	client := feedbackv1.NewFeedbackServiceClient(conn)

	watchCtx, stopWatch := context.WithCancel(context.Background())
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(conn).Watch(watchCtx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before stop = %v, %v; want SERVING", st, err)
	}

	slow := make(chan error, 1)
	go func() {
		resp, err := client.RecordEvents(context.Background(), events("slow"))
		if err == nil && resp.GetAcceptedCount() != 1 {
			err = errors.New("slow call answered wrongly")
		}
		slow <- err
	}()
	<-ts.fb.started

	ts.Stop() // what SIGTERM does through signal.NotifyContext
	if st, err := watch.Recv(); err != nil || st.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after stop = %v, %v; want NOT_SERVING", st, err)
	}
	stopWatch()

	// New calls are refused while the slow one is still running.
	var refused atomic.Bool
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		_, err := client.RecordEvents(ctx, events("u1"), grpc.WaitForReady(false))
		cancel()
		if status.Code(err) == codes.Unavailable {
			refused.Store(true)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !refused.Load() {
		t.Error("new calls were still accepted after the stop began")
	}
	select {
	case err := <-slow:
		t.Fatalf("slow call ended before it was released: %v", err)
	default:
	}

	close(ts.fb.release)
	if err := <-slow; err != nil {
		t.Errorf("in-flight call during graceful stop = %v, want success", err)
	}
}

// TestStopEndsHealthWatches: open health Watch streams (clients with
// client-side health checking keep one per connection) would hold
// GracefulStop until the shutdown timeout. They are told NOT_SERVING and
// then ended.
func TestStopEndsHealthWatches(t *testing.T) {
	srv := testenv.Serve(t, func(*serving.Server) {}, func(c *serving.Config) { c.ShutdownTimeout = time.Minute })
	health := healthpb.NewHealthClient(srv.Conn)
	var streams []grpc.ServerStreamingClient[healthpb.HealthCheckResponse]
	for _, service := range []string{"", serving.LivenessService, "no-such-service"} {
		w, err := health.Watch(context.Background(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Recv(); err != nil { // the first status: the watch is open
			t.Fatal(err)
		}
		streams = append(streams, w)
	}

	srv.Stop()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for i, w := range streams {
			for {
				st, err := w.Recv()
				if err != nil {
					break // ended by the server
				}
				if st.GetStatus() == healthpb.HealthCheckResponse_SERVING {
					t.Errorf("watch %d: SERVING after the stop began", i)
				}
			}
		}
	}()
	select {
	case <-ended:
	case <-time.After(30 * time.Second): // half the shutdown timeout
		t.Fatal("the health watches are still open: GracefulStop waits for them until the shutdown timeout")
	}
}

func TestReadiness(t *testing.T) {
	var broken atomic.Bool
	broken.Store(true)
	srv := testenv.Serve(t, func(srv *serving.Server) {
		srv.AddCheck("redis", func(context.Context) error {
			if broken.Load() {
				return errors.New("redis: connection refused")
			}
			return nil
		})
	}, func(c *serving.Config) { c.ReadyInterval = 20 * time.Millisecond })
	hc := healthpb.NewHealthClient(srv.Conn)
	expect := func(wantHTTP int, want healthpb.HealthCheckResponse_ServingStatus) {
		t.Helper()
		var gotHTTP int
		var got healthpb.HealthCheckResponse_ServingStatus
		for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
			resp, err := http.Get(srv.URL("/readyz"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			gotHTTP = resp.StatusCode
			h, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{})
			if err != nil {
				t.Fatal(err)
			}
			got = h.GetStatus()
			if gotHTTP == wantHTTP && got == want {
				return
			}
		}
		t.Errorf("readiness = HTTP %d and %v, want HTTP %d and %v", gotHTTP, got, wantHTTP, want)
	}
	expect(http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING)
	if h, err := hc.Check(context.Background(), &healthpb.HealthCheckRequest{Service: serving.LivenessService}); err != nil || h.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Errorf("liveness while a dependency is down = %v, %v; want SERVING (alive, only not ready)", h, err)
	}
	broken.Store(false)
	expect(http.StatusOK, healthpb.HealthCheckResponse_SERVING)
	broken.Store(true)
	expect(http.StatusServiceUnavailable, healthpb.HealthCheckResponse_NOT_SERVING)

	resp, err := http.Get(srv.URL("/livez"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/livez while unready = HTTP %d, want 200 (alive, only not ready)", resp.StatusCode)
	}
}

func TestRateLimitPerClient(t *testing.T) {
	ts := startServer(t, func(c *serving.Config) { c.RateLimit, c.RateBurst = 1, 3 })
	c := ts.client(t, serving.ClientConfig{})
	var limited error
	for i := range 10 {
		_, err := c.RecordEvents(context.Background(), events("u1"))
		if err != nil {
			limited = err
			if i < 3 {
				t.Errorf("call %d refused within the burst of 3: %v", i, err)
			}
			break
		}
	}
	if status.Code(limited) != codes.ResourceExhausted {
		t.Fatalf("10 quick calls at 1/s with burst 3: last error %v, want ResourceExhausted", limited)
	}
	// REST from the same address with a forged X-Forwarded-For is the same
	// client (the gateway appends the connection's address, and that is
	// what counts): refused.
	forged, _ := http.NewRequest(http.MethodPost, ts.URL("/v1/events"), strings.NewReader(`{"events":[{"eventId":"e","type":"EVENT_TYPE_CLICK","userId":"u1","itemId":"i"}]}`))
	forged.Header.Set("X-Forwarded-For", "203.0.113.9")
	if resp, err := http.DefaultClient.Do(forged); err != nil {
		t.Fatal(err)
	} else if resp.Body.Close(); resp.StatusCode != http.StatusTooManyRequests {
		t.Errorf("REST with a forged X-Forwarded-For = HTTP %d, want 429 (same client)", resp.StatusCode)
	}
	// Another address (127.0.0.2 is loopback too) has its own bucket.
	other := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)}}).DialContext}}
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		resp, err := other.Post(ts.URL("/v1/events"), "application/json", strings.NewReader(`{"events":[{"eventId":"e","type":"EVENT_TYPE_CLICK","userId":"u1","itemId":"i"}]}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("REST call %d from 127.0.0.2 = HTTP %d, want %d", i, resp.StatusCode, want)
		}
	}
	// Health is never limited.
	conn, _ := serving.Dial(ts.GRPCAddr().String(), serving.ClientConfig{})
	defer conn.Close()
	for range 5 {
		if _, err := healthpb.NewHealthClient(conn).Check(context.Background(), &healthpb.HealthCheckRequest{}); err != nil {
			t.Errorf("health check limited: %v", err)
		}
	}
}

func TestPprofOnlyOnLoopback(t *testing.T) {
	base := serving.Config{GRPCAddr: ":0", HTTPAddr: ":0", MaxRequestBytes: 4096, MaxConcurrentStreams: 1, ShutdownTimeout: time.Second, ReadyInterval: time.Second}
	for addr, ok := range map[string]bool{"127.0.0.1:6060": true, "localhost:6060": true, "[::1]:6060": true, "0.0.0.0:6060": false, ":6060": false, "10.0.0.5:6060": false} {
		c := base
		c.PprofAddr = addr
		if err := c.Validate(); (err == nil) != ok {
			t.Errorf("-pprof-addr %s: Validate = %v, want accepted %v", addr, err, ok)
		}
	}
}

// TestForgedForwardingHeaders: a client that forges a fresh
// X-Forwarded-For on every call is still one client, over gRPC, gRPC-Web
// and REST alike, unless it connects from a trusted proxy; refusals are
// counted per protocol.
func TestForgedForwardingHeaders(t *testing.T) {
	call := map[string]func(t *testing.T, ts *testServer, forged string) bool{ // true: refused
		"grpc": func(t *testing.T, ts *testServer, forged string) bool {
			ctx := metadata.AppendToOutgoingContext(context.Background(), "x-forwarded-for", forged, "x-real-ip", forged)
			_, err := ts.client(t, serving.ClientConfig{}).RecordEvents(ctx, events("u1"))
			if err != nil && status.Code(err) != codes.ResourceExhausted {
				t.Fatalf("gRPC call: %v", err)
			}
			return err != nil
		},
		"grpc-web": func(t *testing.T, ts *testServer, forged string) bool {
			code, msg := testenv.GRPCWebHeader(t, ts.URL("/recsys.feedback.v1.FeedbackService/RecordEvents"),
				http.Header{"X-Forwarded-For": {forged}}, events("u1"), &feedbackv1.RecordEventsResponse{})
			if code != codes.OK && code != codes.ResourceExhausted {
				t.Fatalf("gRPC-Web call: %v %s", code, msg)
			}
			return code == codes.ResourceExhausted
		},
		"rest": func(t *testing.T, ts *testServer, forged string) bool {
			req, _ := http.NewRequest(http.MethodPost, ts.URL("/v1/events"), strings.NewReader(`{"events":[{"eventId":"e","type":"EVENT_TYPE_CLICK","userId":"u1","itemId":"i"}]}`))
			req.Header.Set("X-Forwarded-For", forged)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusTooManyRequests
		},
	}
	for protocol, do := range call {
		for _, tc := range []struct {
			name    string
			trusted []string
			refused bool
		}{
			{"untrusted peer", nil, true},
			{"trusted proxy", []string{"127.0.0.0/8", "::1"}, false},
		} {
			t.Run(protocol+"/"+tc.name, func(t *testing.T) {
				ts := startServer(t, func(c *serving.Config) { c.RateLimit, c.RateBurst, c.TrustedProxies = 1, 3, tc.trusted })
				refused := 0
				for i := range 10 {
					if do(t, ts, fmt.Sprintf("203.0.113.%d", i+1)) {
						refused++
					}
				}
				if (refused > 0) != tc.refused {
					t.Errorf("10 calls at 1/s, burst 3, each with a new forged X-Forwarded-For: %d refused, want refusals %v", refused, tc.refused)
				}
				if got := limitedCount(t, ts, protocol); got != float64(refused) {
					t.Errorf("recsys_rate_limited_total{protocol=%q} = %v, want %d", protocol, got, refused)
				}
			})
		}
	}
}

func limitedCount(t *testing.T, ts *testServer, protocol string) float64 {
	t.Helper()
	mfs, err := ts.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "recsys_rate_limited_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "protocol" && l.GetValue() == protocol {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

func TestTrustedProxiesFlag(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want error
	}{
		{[]string{"10.0.0.0/8", "192.168.1.7", "::1", "fd00::/8"}, nil},
		{[]string{"not-a-cidr"}, errors.New("")},
		{[]string{"10.0.0.0/33"}, errors.New("")},
	} {
		_, err := serving.ParseTrustedProxies(tc.in)
		if (err != nil) != (tc.want != nil) {
			t.Errorf("serving.ParseTrustedProxies(%v) = %v, want an error %v", tc.in, err, tc.want != nil)
		}
	}
}
