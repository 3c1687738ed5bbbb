package progress

import (
	"bytes"
	"strings"
	"testing"
)

func TestBarWritesTenthsOffTerminal(t *testing.T) {
	var out bytes.Buffer
	b := New(&out, "load", "rows", 100)
	for range 100 {
		b.Add(1)
	}
	b.Done()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 11 {
		t.Fatalf("got %d lines, want 11 (0%%..100%%):\n%s", len(lines), out.String())
	}
	if !strings.Contains(lines[10], "100%") || !strings.Contains(lines[10], "100/100 rows") {
		t.Errorf("last line = %q, want 100%% and 100/100 rows", lines[10])
	}
}
