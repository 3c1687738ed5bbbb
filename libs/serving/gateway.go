package serving

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/genproto/googleapis/api/annotations"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// NewGatewayMux returns a grpc-gateway mux that passes the project's
// request headers (experiment overrides, trace context) on to gRPC, writes
// JSON that matches the published OpenAPI documents, and answers a method
// a path does not have with 405 and an Allow header.
func NewGatewayMux(opts ...runtime.ServeMuxOption) *runtime.ServeMux {
	match := runtime.WithIncomingHeaderMatcher(func(key string) (string, bool) {
		for _, h := range forwardedHeaders {
			if strings.EqualFold(key, h) {
				return h, true
			}
		}
		return runtime.DefaultHeaderMatcher(key)
	})
	// grpc-gateway's default JSON sets EmitUnpopulated, which writes an
	// unset message field as null: "age": null where the document says a
	// string (a Duration). EmitDefaultValues still writes zeros, empty
	// lists and empty maps, so clients keep seeing every scalar field, but
	// leaves unset messages out, as the documents allow.
	json := runtime.WithMarshalerOption(runtime.MIMEWildcard, &runtime.HTTPBodyMarshaler{Marshaler: &runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitDefaultValues: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}})
	routing := runtime.WithRoutingErrorHandler(routingError)
	return runtime.NewServeMux(append([]runtime.ServeMuxOption{match, json, routing}, opts...)...)
}

// routingError answers requests no REST handler takes. grpc-gateway's
// default answers a method the path does not have with 501 (Unimplemented);
// HTTP says 405 with the methods the path has in Allow (RFC 9110, 15.5.6).
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, code int) {
	if code != http.StatusMethodNotAllowed {
		runtime.DefaultRoutingErrorHandler(ctx, mux, m, w, r, code)
		return
	}
	allow := allowedMethods(r)
	if len(allow) > 0 {
		w.Header().Set("Allow", strings.Join(allow, ", "))
	}
	runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{
		HTTPStatus: http.StatusMethodNotAllowed,
		Err:        status.Errorf(codes.Unimplemented, "method %s is not allowed on %s; allowed: %s", r.Method, r.URL.Path, strings.Join(allow, ", ")),
	})
}

// restRoutes is every REST binding (google.api.http) of every service
// linked into the binary, each in a mux of its own whose handler only
// marks the probe that reached it. The gateway mux chooses 405 only when
// one of its own handlers matches the path under another method, and each
// of its handlers comes from one of these bindings, so the methods these
// match are the path's methods (as long as no two services bind one path
// template to different methods: TestRESTBindingsAreUnambiguous).
var restRoutes = sync.OnceValue(func() map[string]*runtime.ServeMux {
	routes := map[string]*runtime.ServeMux{}
	for _, b := range restBindings() {
		mux, ok := routes[b.method]
		if !ok {
			mux = runtime.NewServeMux(runtime.WithRoutingErrorHandler(func(context.Context, *runtime.ServeMux, runtime.Marshaler, http.ResponseWriter, *http.Request, int) {}))
			routes[b.method] = mux
		}
		// Templates come from compiled-in descriptors that the gateway's
		// generated code registered with the same parser; one that fails
		// here fails there first.
		_ = mux.HandlePath(b.method, b.template, func(_ http.ResponseWriter, r *http.Request, _ map[string]string) {
			if hit, ok := r.Context().Value(probeKey{}).(*bool); ok {
				*hit = true
			}
		})
	}
	return routes
})

type probeKey struct{}

// allowedMethods returns the methods whose REST bindings match r's path.
func allowedMethods(r *http.Request) []string {
	var allow []string
	for method, mux := range restRoutes() {
		hit := false
		probe := r.Clone(context.WithValue(r.Context(), probeKey{}, &hit))
		probe.Method = method
		probe.Body = http.NoBody
		probe.Header = http.Header{}
		mux.ServeHTTP(discardResponse{}, probe)
		if hit {
			allow = append(allow, method)
		}
	}
	slices.Sort(allow)
	return allow
}

type discardResponse struct{}

func (discardResponse) Header() http.Header         { return http.Header{} }
func (discardResponse) Write(b []byte) (int, error) { return len(b), nil }
func (discardResponse) WriteHeader(int)             {}

// restBinding is one HTTP method and path template of an RPC.
type restBinding struct {
	rpc, method, template string
}

// restBindings lists the google.api.http bindings of every service in
// the global registry, and the health endpoint Server mounts.
func restBindings() []restBinding {
	out := []restBinding{{rpc: "grpc.health.v1.Health.Check", method: http.MethodGet, template: "/healthz"}}
	protoregistry.GlobalFiles.RangeFiles(func(fd protoreflect.FileDescriptor) bool {
		for i := range fd.Services().Len() {
			svc := fd.Services().Get(i)
			for j := range svc.Methods().Len() {
				m := svc.Methods().Get(j)
				rule, ok := proto.GetExtension(m.Options(), annotations.E_Http).(*annotations.HttpRule)
				if !ok || rule == nil {
					continue
				}
				for _, r := range append([]*annotations.HttpRule{rule}, rule.GetAdditionalBindings()...) {
					if method, tmpl := httpPattern(r); tmpl != "" {
						out = append(out, restBinding{rpc: string(m.FullName()), method: method, template: tmpl})
					}
				}
			}
		}
		return true
	})
	return out
}

func httpPattern(r *annotations.HttpRule) (string, string) {
	switch p := r.GetPattern().(type) {
	case *annotations.HttpRule_Get:
		return http.MethodGet, p.Get
	case *annotations.HttpRule_Post:
		return http.MethodPost, p.Post
	case *annotations.HttpRule_Put:
		return http.MethodPut, p.Put
	case *annotations.HttpRule_Delete:
		return http.MethodDelete, p.Delete
	case *annotations.HttpRule_Patch:
		return http.MethodPatch, p.Patch
	case *annotations.HttpRule_Custom:
		return p.Custom.GetKind(), p.Custom.GetPath()
	}
	return "", ""
}
