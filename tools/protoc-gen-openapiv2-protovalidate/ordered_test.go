package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestRoundTrip: a document read and written back unchanged is the same
// bytes, so the plugin's output differs from protoc-gen-openapiv2's only
// where it adds rules.
func TestRoundTrip(t *testing.T) {
	docs, err := filepath.Glob("../../gen/openapi/recsys/*/v1/*.swagger.json")
	if err != nil || len(docs) == 0 {
		t.Fatalf("no generated documents found (%v)", err)
	}
	for _, path := range docs {
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := parseObject(want)
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var got bytes.Buffer
		if err := encode(&got, doc, ""); err != nil {
			t.Fatal(err)
		}
		got.WriteByte('\n')
		if !bytes.Equal(got.Bytes(), want) {
			t.Errorf("%s changes when read and written back", path)
		}
	}
}
