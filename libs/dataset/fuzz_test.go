package dataset

import (
	"bytes"
	"testing"
)

// FuzzImportLines: any file content, in every format, yields records or
// errors, never a panic, and every bad row names a line.
func FuzzImportLines(f *testing.F) {
	f.Add([]byte("196\t242\t3\t881250949\n"))
	f.Add([]byte("1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n"))
	f.Add([]byte("userId,movieId,rating,timestamp\n1,2,3.5,4\n"))
	f.Add([]byte("movieId,title,genres\n1,\"A, B (1999)\",Drama|Comedy\n"))
	f.Add([]byte(`{"userId":"u1","age":3}` + "\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, format := range []Format{JSONL, CSV, ML100K, ML1M, MLLatest} {
			check := func(err error) {
				if le, ok := err.(*LineError); ok && le.Line < 1 {
					t.Fatalf("%s: bad row without a line number: %v", format, err)
				}
			}
			for _, err := range Users(bytes.NewReader(b), "f", format) {
				check(err)
			}
			for _, err := range Items(bytes.NewReader(b), "f", format) {
				check(err)
			}
			for _, err := range Ratings(bytes.NewReader(b), "f", format) {
				check(err)
			}
		}
	})
}
