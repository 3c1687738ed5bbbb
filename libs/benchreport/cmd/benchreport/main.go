// Command benchreport reads `go test -bench` output on stdin and prints the
// budget table (make bench); with -o it also writes the table to a file.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/recsys/recsys/libs/benchreport"
)

func main() {
	out := flag.String("o", "", "also write the table to this file")
	flag.Parse()
	res, err := benchreport.Parse(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
	var buf bytes.Buffer
	bad := benchreport.Write(io.MultiWriter(os.Stdout, &buf), res)
	if *out != "" {
		if err := os.WriteFile(*out, buf.Bytes(), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		fmt.Printf("table written to %s\n", *out)
	}
	if bad > 0 {
		fmt.Printf("%d budget(s) missed or not measured\n", bad)
		os.Exit(1)
	}
}
