package serving

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
)

// TestListenTakenPort: a taken port fails with the cause kept and the
// flag that chooses another named.
func TestListenTakenPort(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	l, err := listen("gRPC", "grpc-addr", taken.Addr().String())
	if err == nil {
		l.Close()
		t.Fatal("listening on a taken port succeeded")
	}
	if !errors.Is(err, syscall.EADDRINUSE) || !strings.Contains(err.Error(), "choose another with -grpc-addr") {
		t.Errorf("err = %v, want EADDRINUSE naming -grpc-addr", err)
	}
}
