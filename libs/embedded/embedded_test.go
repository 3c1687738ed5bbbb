package embedded

import (
	"net"
	"testing"
)

// TestStart: each server answers on the address it reports, and a second
// broker asked for a taken port fails with an error InUse recognises.
func TestStart(t *testing.T) {
	m, err := StartRedis("")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	addr, stop, err := StartKafka("")
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	for _, a := range []string{m.Addr(), addr} {
		c, err := net.Dial("tcp", a)
		if err != nil {
			t.Fatalf("dial %s: %v", a, err)
		}
		c.Close()
	}
	if _, _, err := StartKafka(addr); !InUse(err) {
		t.Errorf("StartKafka(%s) while a broker listens there = %v, want an error InUse recognises", addr, err)
	}
	if _, err := StartRedis(addr); err == nil {
		t.Errorf("StartRedis(%s) on a taken port = nil error, want one", addr)
	}
}
