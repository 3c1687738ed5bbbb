package servicemap

import (
	"strings"
	"testing"

	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
)

// TestTable: names and ports are unique, no port is a standard server's,
// and each public package is a protobuf package whose services the
// gateway handlers publish.
func TestTable(t *testing.T) {
	standard := map[int]string{KafkaPort: "Kafka", RedisPort: "Redis", 9090: "Prometheus", 9093: "Kafka's controller"}
	seen := map[any]Name{}
	for _, s := range All() {
		for _, key := range []any{s.Name, s.GRPCPort, s.HTTPPort} {
			if other, ok := seen[key]; ok {
				t.Errorf("%s and %s share %v", other, s.Name, key)
			}
			seen[key] = s.Name
		}
		for _, p := range []int{s.GRPCPort, s.HTTPPort} {
			if who, ok := standard[p]; ok {
				t.Errorf("%s: port %d is %s's", s.Name, p, who)
			}
		}
		if (s.Package == "") != (len(s.Gateway) == 0) {
			t.Errorf("%s: package %q with %d gateway handlers: a public API has both", s.Name, s.Package, len(s.Gateway))
		}
		if s.Package == "" {
			continue
		}
		n := 0
		protoregistry.GlobalFiles.RangeFilesByPackage(protoreflect.FullName(s.Package), func(f protoreflect.FileDescriptor) bool {
			n += f.Services().Len()
			return true
		})
		if n == 0 || n != len(s.Gateway) {
			t.Errorf("%s: package %s has %d gRPC services, and %d gateway handlers publish them", s.Name, s.Package, n, len(s.Gateway))
		}
		if !strings.HasPrefix(s.Package, "recsys."+string(s.Name)+".") {
			t.Errorf("%s: package %s, want recsys.%s.v<N>", s.Name, s.Package, s.Name)
		}
	}
	if got := Of(Ranking); got.GRPCPort != 50053 || got.GRPCAddr() != "localhost:50053" || got.HTTPAddr() != "localhost:8093" {
		t.Errorf("Of(Ranking) = %+v (%s, %s), want gRPC 50053 and HTTP 8093", got, got.GRPCAddr(), got.HTTPAddr())
	}
}
