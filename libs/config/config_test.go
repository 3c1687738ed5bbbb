package config

import (
	"flag"
	"slices"
	"testing"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		args     []string
		wantAddr string
		wantList []string
		wantErr  bool
	}{
		{name: "defaults", wantAddr: ":1", wantList: []string{"a"}},
		{name: "environment", env: map[string]string{"RECSYS_GRPC_ADDR": ":2", "RECSYS_ORIGINS": "x, y"}, wantAddr: ":2", wantList: []string{"x", "y"}},
		{name: "flag wins over environment", env: map[string]string{"RECSYS_GRPC_ADDR": ":2"}, args: []string{"-grpc-addr=:3"}, wantAddr: ":3", wantList: []string{"a"}},
		{name: "bad environment value", env: map[string]string{"RECSYS_COUNT": "many"}, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			addr := fs.String("grpc-addr", ":1", "")
			fs.Int("count", 1, "")
			list := StringList{"a"}
			fs.Var(&list, "origins", "")
			err := Parse(fs, tc.args)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Parse(%v) error = %v, want error %v", tc.args, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if *addr != tc.wantAddr || !slices.Equal(list, tc.wantList) {
				t.Errorf("Parse(%v) = %q %v, want %q %v", tc.args, *addr, list, tc.wantAddr, tc.wantList)
			}
		})
	}
}
