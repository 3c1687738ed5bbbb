// Package config fills a binary's flag set from the environment and the
// command line: flag defaults, then RECSYS_* environment variables, then
// explicit flags, so that the same binary runs unchanged under make run,
// docker-compose and Kubernetes.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
)

// EnvName is the environment variable that sets the flag name:
// "grpc-addr" reads RECSYS_GRPC_ADDR.
func EnvName(flagName string) string {
	return "RECSYS_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(flagName))
}

// Parse sets every flag of fs from its environment variable when present,
// then parses args, which win. It returns flag.ErrHelp for -h.
func Parse(fs *flag.FlagSet, args []string) error {
	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		v, ok := os.LookupEnv(EnvName(f.Name))
		if !ok {
			return
		}
		if err := f.Value.Set(v); err != nil {
			errs = append(errs, fmt.Errorf("environment %s=%q: %w", EnvName(f.Name), v, err))
		}
	})
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return fs.Parse(args)
}

// StringList is a flag.Value for a comma-separated list.
type StringList []string

func (l *StringList) String() string { return strings.Join(*l, ",") }

// Set replaces the list with the comma-separated values of s.
func (l *StringList) Set(s string) error {
	*l = nil
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			*l = append(*l, v)
		}
	}
	return nil
}
