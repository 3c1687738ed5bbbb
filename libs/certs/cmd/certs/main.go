// Command certs writes a local CA and one mTLS certificate per service, for
// running the services with mutual TLS without a mesh (make certs).
package main

import (
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/recsys/recsys/libs/certs"
	"github.com/recsys/recsys/libs/config"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "certs:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := flag.NewFlagSet("certs", flag.ContinueOnError)
	dir := fs.String("dir", "certs", "output folder")
	valid := fs.Duration("valid", 365*24*time.Hour, "validity of every certificate")
	services := config.StringList{"userfeatures", "itemfeatures", "ranking", "feedback", "featurecompute", "web", "trainer", "ingest", "simulator", "local", "redis"}
	fs.Var(&services, "services", "comma-separated service names to issue certificates for")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if err := certs.WriteFiles(*dir, services, *valid); err != nil {
		return err
	}
	fmt.Printf("wrote %s/ca.pem and a certificate and key for each of %v\n", *dir, []string(services))
	return nil
}
