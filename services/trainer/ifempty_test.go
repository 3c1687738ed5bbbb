package trainer

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestIfEmpty: with -if-empty the trainer publishes a first version into
// an empty registry, and does nothing once the registry holds one (the
// first-model job of deploy/, which runs on every apply). A publish in
// progress (a hidden folder) is not a version.
func TestIfEmpty(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "ctr", ".publish-123"), 0o755); err != nil {
		t.Fatal(err)
	}
	small := Config{ModelRoot: root, ModelName: "ctr", IfEmpty: true, WorldSeed: 3, Users: 60, Items: 40, Interactions: 1500, Epochs: 1, Dim: 4}
	first := small
	first.Version = "bootstrap"
	var out bytes.Buffer
	res, err := Train(context.Background(), first, &out)
	if err != nil {
		t.Fatalf("Train(-if-empty, empty registry): %v\n%s", err, out.String())
	}
	if want := filepath.Join(root, "ctr", "bootstrap"); res.Dir != want {
		t.Fatalf("Train(-if-empty, empty registry) published %q, want %q", res.Dir, want)
	}

	again := small
	again.Version = "second"
	out.Reset()
	res, err = Train(context.Background(), again, &out)
	if err != nil {
		t.Fatalf("Train(-if-empty, registry with bootstrap): %v", err)
	}
	if res.Dir != "" {
		t.Errorf("Train(-if-empty, registry with bootstrap) published %q, want nothing", res.Dir)
	}
	if _, err := os.Stat(filepath.Join(root, "ctr", "second")); !os.IsNotExist(err) {
		t.Errorf("version second exists (%v); -if-empty should not have trained", err)
	}
}
