package serving

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/pprof"
	"slices"
	"strings"

	"github.com/improbable-eng/grpc-web/go/grpcweb"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc/codes"
)

// forwardedHeaders are the request headers, besides the standard ones, that
// REST calls pass on to the gRPC handler as metadata.
var forwardedHeaders = []string{"x-recsys-arm", "x-model-version", "x-request-id", "traceparent", "tracestate", "baggage"}

func (s *Server) allowOrigin(origin string) bool {
	return slices.Contains(s.cfg.AllowedOrigins, "*") || slices.Contains(s.cfg.AllowedOrigins, origin)
}

// handler routes one HTTP request: operational endpoints, then gRPC-Web,
// then REST.
func (s *Server) handler() http.Handler {
	web := grpcweb.WrapServer(s.grpc,
		grpcweb.WithOriginFunc(s.allowOrigin),
		grpcweb.WithWebsockets(false),
	)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /livez", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReadyz)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.metrics, promhttp.HandlerOpts{Registry: s.metrics}))
	if s.openAPI != nil {
		mux.HandleFunc("GET /openapi.json", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write(s.openAPI)
		})
	}
	for pattern, h := range s.extra {
		mux.Handle(pattern, h)
	}
	if _, taken := s.extra["/"]; !taken {
		rest := s.cors(s.gateway)
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			if web.IsGrpcWebRequest(r) || web.IsAcceptableGrpcCorsRequest(r) {
				web.ServeHTTP(w, r)
				return
			}
			rest.ServeHTTP(w, r)
		})
	}
	return s.requireTLS(s.limitBody(mux))
}

// limitBody refuses bodies over the request limit with 413 and a JSON
// status, before any handler reads them. Bodies of unknown length are cut
// at the limit by http.MaxBytesReader.
func (s *Server) limitBody(next http.Handler) http.Handler {
	// gRPC-Web frames add 5 bytes per message; allow for that.
	limit := int64(s.cfg.MaxRequestBytes) + 5
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > limit {
			writeStatus(w, http.StatusRequestEntityTooLarge, codes.ResourceExhausted,
				fmt.Sprintf("request body of %d bytes is over the limit of %d bytes", r.ContentLength, s.cfg.MaxRequestBytes))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, limit)
		next.ServeHTTP(w, r)
	})
}

// cors answers REST preflights and tags responses for allowed origins only;
// other origins get no CORS headers, so browsers refuse them.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" || !s.allowOrigin(origin) {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Add("Vary", "Origin")
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "Grpc-Metadata-X-Request-Id")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Content-Type, Authorization, "+strings.Join(forwardedHeaders, ", "))
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	ready, checks := s.readiness()
	s.mu.Lock()
	detail := maps.Clone(s.detail)
	s.mu.Unlock()
	code := http.StatusOK
	if !ready {
		code = http.StatusServiceUnavailable
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{"ready": ready, "checks": checks, "detail": detail})
}

// writeStatus writes a google.rpc.Status-shaped JSON body, as grpc-gateway
// does for errors.
func writeStatus(w http.ResponseWriter, httpCode int, code codes.Code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(httpCode)
	json.NewEncoder(w).Encode(map[string]any{"code": int(code), "message": msg, "details": []any{}})
}

// pprofMux serves net/http/pprof; Run binds it to a loopback address only.
func pprofMux() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
