package featurecompute

import (
	"bytes"
	"context"
	"strings"
	"testing"
)

// TestCommandsRefuseBadInput: a command given what it cannot use exits 2
// with the reason, before it connects to anything (the addresses here
// lead nowhere).
func TestCommandsRefuseBadInput(t *testing.T) {
	nowhere := []string{"-redis=127.0.0.1:1", "-redis-timeout=100ms"}
	for _, tc := range []struct {
		name    string
		args    []string
		mention string
	}{
		{"unknown command", []string{"rebuilt"}, `unknown command "rebuilt"`},
		{"unknown flag", []string{"rebuild", "-rebuild=all"}, "flag provided but not defined: -rebuild"},
		{"bad -from", append([]string{"rebuild", "-from=yesterday"}, nowhere...), `-from "yesterday": want "all"`},
		{"bad offsets", append([]string{"rebuild", "-from=0=1,0=2"}, nowhere...), "partition 0 is given twice"},
		{"rebuild argument", append([]string{"rebuild"}, append(nowhere, "all")...), "name where the replay starts with -from"},
		{"no brokers", append([]string{"rebuild", "-kafka="}, nowhere...), "-kafka: at least one broker"},
		{"no generation", append([]string{"drop-generation"}, nowhere...), "want one argument, the generation"},
		{"two generations", append([]string{"drop-generation"}, append(nowhere, "g1:", "g2:")...), "want one argument, the generation"},
		{"flag after the generation", []string{"drop-generation", "g1:", "-redis=127.0.0.1:1"}, "flags go before it"},
		{"bad log level", []string{"drop-generation", "-log-level=loud", "g1:"}, `log level "loud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			if code := RunCommand(context.Background(), tc.args, &stderr); code != 2 || !strings.Contains(stderr.String(), tc.mention) {
				t.Errorf("featurecompute %s = exit %d, stderr:\n%s\nwant exit 2 mentioning %q", strings.Join(tc.args, " "), code, &stderr, tc.mention)
			}
		})
	}
}

func TestCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		mention []string
	}{
		{[]string{"help"}, []string{"featurecompute rebuild [flags]", "featurecompute drop-generation [flags] GENERATION"}},
		{[]string{"rebuild", "-h"}, []string{"Usage: featurecompute rebuild", "-from", "-kafka", "-redis-namespace"}},
		{[]string{"drop-generation", "-h"}, []string{"Usage: featurecompute drop-generation [flags] GENERATION", "-redis"}},
	} {
		var stderr bytes.Buffer
		code := RunCommand(context.Background(), tc.args, &stderr)
		for _, m := range tc.mention {
			if code != 0 || !strings.Contains(stderr.String(), m) {
				t.Errorf("featurecompute %s = exit %d, stderr:\n%s\nwant exit 0 mentioning %q", strings.Join(tc.args, " "), code, &stderr, m)
			}
		}
	}
}

// TestRebuildThenDropCommands runs the two jobs as an operator does: a
// rebuild from offsets switches readers to a generation that counts the
// events from there on and says how to drop the one it replaced; dropping
// that one works, dropping the active one fails (exit 1).
func TestRebuildThenDropCommands(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	evs, _ := burst(300)
	h.produce(encodeAll(t, evs))
	store := []string{"-redis=" + h.rdb.Options().Addr, "-redis-namespace=" + h.prefix}

	var stderr bytes.Buffer
	args := append([]string{"rebuild", "-kafka=" + strings.Join(h.brokers, ","), "-topic=" + h.topic, "-from=0=20,1=20,2=20"}, store...)
	if code := RunCommand(ctx, args, &stderr); code != 0 {
		t.Fatalf("featurecompute rebuild = exit %d, stderr:\n%s", code, &stderr)
	}
	if !strings.Contains(stderr.String(), "featurecompute drop-generation default") {
		t.Errorf("rebuild's log does not say how to drop the generation it replaced:\n%s", &stderr)
	}
	if err := h.store.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if n := total(h.counts()); n != 300-3*20 || h.store.Generation() == "" {
		t.Errorf("after the rebuild: generation %q counts %d events, want a new one counting %d", h.store.Generation(), n, 300-3*20)
	}

	stderr.Reset()
	if code := RunCommand(ctx, append([]string{"drop-generation"}, append(store, "default")...), &stderr); code != 0 {
		t.Errorf("featurecompute drop-generation default = exit %d, stderr:\n%s", code, &stderr)
	}
	stderr.Reset()
	if code := RunCommand(ctx, append([]string{"drop-generation"}, append(store, h.store.Generation())...), &stderr); code != 1 || !strings.Contains(stderr.String(), "active") {
		t.Errorf("featurecompute drop-generation <active> = exit %d, stderr:\n%s\nwant exit 1 refusing the active generation", code, &stderr)
	}
}
