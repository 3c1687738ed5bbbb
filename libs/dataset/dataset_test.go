package dataset

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestMovieLens100K(t *testing.T) {
	users := "1|24|M|technician|85711\n2|53|F|other|94043\n"
	var got []string
	for u, err := range Users(strings.NewReader(users), "u.user", ML100K) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, u.GetUserId()+":"+u.GetOccupation())
	}
	if !slices.Equal(got, []string{"1:technician", "2:other"}) {
		t.Errorf("Users(u.user) = %v", got)
	}

	// u.item is ISO-8859-1: byte 0xe9 is "é".
	items := "1|Toy Story (1995)|01-Jan-1995||http://x|0|0|0|1|1|1|0|0|0|0|0|0|0|0|0|0|0|0|0\n" +
		"2|Caf\xe9 (1996)|01-Jan-1996||http://y|0|0|0|0|0|0|0|0|1|0|0|0|0|0|0|0|0|0|0\n"
	var titles []string
	for it, err := range Items(strings.NewReader(items), "u.item", ML100K) {
		if err != nil {
			t.Fatal(err)
		}
		titles = append(titles, it.GetTitle())
		if it.GetItemId() == "1" && (!slices.Equal(it.GetCategories(), []string{"Animation", "Children's", "Comedy"}) || it.GetYear() != 1995) {
			t.Errorf("item 1 = %v", it)
		}
	}
	if !slices.Equal(titles, []string{"Toy Story (1995)", "Café (1996)"}) {
		t.Errorf("titles = %q", titles)
	}

	data := "196\t242\t3\t881250949\n186\t302\tthree\t891717742\n22\t377\t1\t878887116\n"
	var ok []Rating
	var bad []*LineError
	for r, err := range Ratings(strings.NewReader(data), "u.data", ML100K) {
		var le *LineError
		if errors.As(err, &le) {
			bad = append(bad, le)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		ok = append(ok, r)
	}
	if len(ok) != 2 || ok[0] != (Rating{"196", "242", 3, time.Unix(881250949, 0)}) {
		t.Errorf("ratings = %v", ok)
	}
	if len(bad) != 1 || bad[0].Line != 2 || !strings.Contains(bad[0].Error(), "u.data:2:") {
		t.Errorf("bad rows = %v, want u.data:2", bad)
	}
}

func TestMovieLensLatestAndCSV(t *testing.T) {
	movies := "movieId,title,genres\n1,Toy Story (1995),Adventure|Animation\n2,\"American President, The (1995)\",Comedy|Drama|Romance\n3,Nothing,(no genres listed)\n"
	var got []string
	for it, err := range Items(strings.NewReader(movies), "movies.csv", MLLatest) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, it.GetTitle()+"/"+strings.Join(it.GetCategories(), "+"))
	}
	want := []string{"Toy Story (1995)/Adventure+Animation", "American President, The (1995)/Comedy+Drama+Romance", "Nothing/"}
	if !slices.Equal(got, want) {
		t.Errorf("movies.csv = %q, want %q", got, want)
	}

	for _, tc := range []struct {
		name, in string
		format   Format
		wantErr  string
	}{
		{"missing column", "user,item\n1,2\n", CSV, `no "user_id" column`},
		{"bad rating", "userId,movieId,rating,timestamp\n1,2,x,3\n", MLLatest, "ratings.csv:2:"},
		{"short row", "user_id,item_id,rating,timestamp\n1,2,3\n", CSV, "ratings.csv:2: 3 fields"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var errs []string
			for _, err := range Ratings(strings.NewReader(tc.in), "ratings.csv", tc.format) {
				if err != nil {
					errs = append(errs, err.Error())
				}
			}
			if len(errs) != 1 || !strings.Contains(errs[0], tc.wantErr) {
				t.Errorf("errors = %q, want one containing %q", errs, tc.wantErr)
			}
		})
	}
}

func TestJSONLAndDetect(t *testing.T) {
	in := `{"userId":"u1","age":30,"attributes":{"plan":"pro"}}` + "\n" + `{"userId":` + "\n"
	n, bad := 0, 0
	for u, err := range Users(strings.NewReader(in), "users.jsonl", JSONL) {
		if err != nil {
			bad++
			continue
		}
		n++
		if u.GetAttributes()["plan"] != "pro" {
			t.Errorf("user = %v", u)
		}
	}
	if n != 1 || bad != 1 {
		t.Errorf("read %d good and %d bad rows, want 1 and 1", n, bad)
	}
	for path, want := range map[string]Format{"a/u.data": ML100K, "ratings.csv": MLLatest, "x.jsonl": JSONL, "y.csv": CSV} {
		if got, err := DetectFormat(path); err != nil || got != want {
			t.Errorf("DetectFormat(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
	if _, err := DetectFormat("data.bin"); err == nil {
		t.Error("DetectFormat(data.bin) succeeded, want an error asking for -format")
	}
}
