package testenv

import (
	"context"
	"flag"
	"log/slog"
	"testing"

	"google.golang.org/grpc"

	"github.com/recsys/recsys/libs/serving"
)

// DiscardLogger returns a logger that drops every record (and formats
// none), for code under test that wants a *slog.Logger.
func DiscardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// Server is a serving.Server run for one test, as Serve returns it. Its
// fields and methods may be used from any goroutine of the test.
type Server struct {
	// Server is the production server: interceptors, health, REST,
	// gRPC-Web and metrics, as every service runs it. Serve runs and
	// closes it: call neither Run nor Close.
	*serving.Server
	// Conn is a client of the gRPC port, made as services make theirs
	// (serving.Dial with the default ClientConfig). It is closed when the
	// test ends.
	Conn *grpc.ClientConn
	stop context.CancelFunc
}

// Serve starts a serving.Server for t on loopback ports with the flag
// defaults of every service, changed by configure (in order) when given.
// register adds the services, their REST handlers and readiness checks
// before it runs; it may call t.Fatal. The server stops gracefully when
// the test ends, and the test fails if Run returns an error.
//
// It listens on real loopback ports rather than a bufconn, because a
// serving.Server serves HTTP (REST, gRPC-Web, /readyz) as well as gRPC, and
// tests reach it on both.
func Serve(t testing.TB, register func(*serving.Server), configure ...func(*serving.Config)) *Server {
	t.Helper()
	var cfg serving.Config
	cfg.RegisterFlags(flag.NewFlagSet("testenv", flag.ContinueOnError), 0, 0)
	cfg.GRPCAddr, cfg.HTTPAddr = "127.0.0.1:0", "127.0.0.1:0"
	for _, c := range configure {
		c(&cfg)
	}
	srv, err := serving.New(cfg, DiscardLogger())
	if err != nil {
		t.Fatalf("testenv.Serve: %v", err)
	}
	// Run owns the listeners once it starts; until then a failing register
	// must release them.
	running := false
	defer func() {
		if !running {
			srv.Close()
		}
	}()
	register(srv)
	conn, err := serving.Dial(srv.GRPCAddr().String(), serving.ClientConfig{})
	if err != nil {
		t.Fatalf("testenv.Serve: %v", err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	running = true
	t.Cleanup(func() {
		conn.Close()
		stop()
		if err := <-done; err != nil {
			t.Errorf("testenv.Serve: Run: %v", err)
		}
	})
	return &Server{Server: srv, Conn: conn, stop: stop}
}

// Stop begins a graceful stop, as SIGTERM does in a service, and returns
// at once; the end of the test waits for Run to return. Tests of shutdown
// call it; others let the end of the test stop the server.
func (s *Server) Stop() { s.stop() }

// URL is the address of path on the server's HTTP port.
func (s *Server) URL(path string) string { return "http://" + s.HTTPAddr().String() + path }
