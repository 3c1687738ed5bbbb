package serving

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// TestParseFlagsRejectsArguments: a flag typed without its dash is an
// error, not a service silently run on its defaults.
func TestParseFlagsRejectsArguments(t *testing.T) {
	newFS := func() (*flag.FlagSet, *string) {
		fs := flag.NewFlagSet("svc", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		return fs, fs.String("model-root", "models", "")
	}
	fs, root := newFS()
	if err := parseFlags(fs, []string{"-model-root=m"}); err != nil || *root != "m" {
		t.Errorf("-model-root=m: err %v, value %q", err, *root)
	}
	fs, _ = newFS()
	if err := parseFlags(fs, []string{"-model-root=m", "model-root=x"}); err == nil || !strings.Contains(err.Error(), `unexpected argument "model-root=x"`) {
		t.Errorf("a leftover argument: err = %v, want one naming it", err)
	}
}
