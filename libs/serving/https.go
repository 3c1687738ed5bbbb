package serving

import (
	"bufio"
	"crypto/tls"
	"net"
	"net/http"
	"sync"
	"time"

	"google.golang.org/grpc/codes"
)

// With -tls the HTTP port speaks HTTPS with the gRPC port's certificate
// (docs/architecture.md, "Security"). Plaintext still reaches the
// operational endpoints below on the same port, so probes and scrapers
// that cannot present a certificate keep working; every other path over
// plaintext is redirected (GET, HEAD) or refused.
var plaintextPaths = map[string]bool{"/livez": true, "/readyz": true, "/metrics": true}

// httpsConfig is the HTTP port's TLS config: the service's certificate,
// and a client certificate verified against the CA when one is given.
// Whether a call needs one is requireClientCert's decision, per path:
// browsers and probes have none.
func (s *Server) httpsConfig() (*tls.Config, error) {
	tc, err := s.cfg.TLS.ServerConfig()
	if err != nil {
		return nil, err
	}
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	tc.NextProtos = []string{"h2", "http/1.1"}
	return tc, nil
}

// requireTLS guards the HTTP port when TLS is on: plaintext gets only the
// operational endpoints; API calls (REST, gRPC-Web) need a client
// certificate of the CA unless the server is a public edge
// (Config.PublicHTTP), which browsers call.
func (s *Server) requireTLS(next http.Handler) http.Handler {
	if !s.cfg.TLS.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case plaintextPaths[r.URL.Path]:
		case r.TLS == nil:
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "https://"+r.Host+r.URL.RequestURI(), http.StatusPermanentRedirect)
				return
			}
			writeStatus(w, http.StatusForbidden, codes.Unauthenticated, "this port speaks HTTPS (the platform runs with TLS)")
			return
		case !s.cfg.PublicHTTP && len(r.TLS.VerifiedChains) == 0 && r.URL.Path != "/openapi.json":
			if isGRPCWeb(r) {
				w.Header().Set("Content-Type", "application/grpc-web+proto")
				w.Header().Set("Grpc-Status", "16") // Unauthenticated
				w.Header().Set("Grpc-Message", "a client certificate of the platform's CA is required")
				w.WriteHeader(http.StatusOK)
				return
			}
			writeStatus(w, http.StatusUnauthorized, codes.Unauthenticated, "a client certificate of the platform's CA is required")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func isGRPCWeb(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	return len(ct) >= len("application/grpc-web") && ct[:len("application/grpc-web")] == "application/grpc-web"
}

// sniffListener hands the HTTP server TLS connections (*tls.Conn, which
// net/http completes and reports in Request.TLS) or plaintext ones, told
// apart by the first byte a client sends (a TLS handshake record is 0x16).
// The first byte is awaited off the Accept path, so a silent client
// delays no one.
type sniffListener struct {
	net.Listener
	tls   *tls.Config
	conns chan net.Conn
	errc  chan error
	done  chan struct{}
	once  sync.Once
}

func newSniffListener(l net.Listener, tc *tls.Config) *sniffListener {
	s := &sniffListener{Listener: l, tls: tc, conns: make(chan net.Conn), errc: make(chan error, 1), done: make(chan struct{})}
	go s.acceptLoop()
	return s
}

func (s *sniffListener) acceptLoop() {
	for {
		c, err := s.Listener.Accept()
		if err != nil {
			select {
			case s.errc <- err:
			case <-s.done:
			}
			return
		}
		go s.sniff(c)
	}
}

func (s *sniffListener) sniff(c net.Conn) {
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	first, err := br.Peek(1)
	c.SetReadDeadline(time.Time{})
	if err != nil {
		c.Close()
		return
	}
	var out net.Conn = &peekedConn{Conn: c, r: br}
	if first[0] == 0x16 {
		out = tls.Server(out, s.tls)
	}
	select {
	case s.conns <- out:
	case <-s.done:
		c.Close()
	}
}

func (s *sniffListener) Accept() (net.Conn, error) {
	select {
	case c := <-s.conns:
		return c, nil
	case err := <-s.errc:
		return nil, err
	case <-s.done:
		return nil, net.ErrClosed
	}
}

func (s *sniffListener) Close() error {
	s.once.Do(func() { close(s.done) })
	return s.Listener.Close()
}

// peekedConn reads first what sniffing buffered.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *peekedConn) Read(p []byte) (int, error) { return c.r.Read(p) }
