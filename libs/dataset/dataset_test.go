package dataset

import (
	"errors"
	"fmt"
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

func TestMovieLens1M(t *testing.T) {
	users := "1::F::1::10::48067\n2::M::56::16::70072\n3::M::25::21::55117\n"
	var got []string
	var bad []string
	for u, err := range Users(strings.NewReader(users), "users.dat", ML1M) {
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		got = append(got, fmt.Sprintf("%s:%s:%d:%s:%s", u.GetUserId(), u.GetGender(), u.GetAge(), u.GetOccupation(), u.GetZipCode()))
	}
	if !slices.Equal(got, []string{"1:F:1:K-12 student:48067", "2:M:56:self-employed:70072"}) {
		t.Errorf("Users(users.dat) = %q", got)
	}
	if len(bad) != 1 || !strings.Contains(bad[0], "users.dat:3: occupation \"21\"") {
		t.Errorf("bad rows = %q, want users.dat:3's occupation", bad)
	}

	// movies.dat is ISO-8859-1 too.
	movies := "1::Toy Story (1995)::Animation|Children's|Comedy\n2::Caf\xe9 (1996)::Drama\n"
	var items []string
	for it, err := range Items(strings.NewReader(movies), "movies.dat", ML1M) {
		if err != nil {
			t.Fatal(err)
		}
		items = append(items, fmt.Sprintf("%s/%s/%d/%s", it.GetItemId(), it.GetTitle(), it.GetYear(), strings.Join(it.GetCategories(), "+")))
	}
	if want := []string{"1/Toy Story (1995)/1995/Animation+Children's+Comedy", "2/Café (1996)/1996/Drama"}; !slices.Equal(items, want) {
		t.Errorf("Items(movies.dat) = %q, want %q", items, want)
	}

	// ml-10m's ratings.dat has half stars.
	data := "1::1193::5::978300760\n1::661::3.5::978302109\n1::914\t3::978301968\n"
	var ok []Rating
	bad = nil
	for r, err := range Ratings(strings.NewReader(data), "ratings.dat", ML1M) {
		if err != nil {
			bad = append(bad, err.Error())
			continue
		}
		ok = append(ok, r)
	}
	if len(ok) != 2 || ok[0] != (Rating{"1", "1193", 5, time.Unix(978300760, 0)}) || ok[1].Rating != 3.5 {
		t.Errorf("ratings = %v", ok)
	}
	if len(bad) != 1 || !strings.Contains(bad[0], "ratings.dat:3: 3 ::-separated fields, want 4") {
		t.Errorf("bad rows = %q, want ratings.dat:3", bad)
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
	for path, want := range map[string]Format{"a/u.data": ML100K, "ml-1m/ratings.dat": ML1M, "movies.dat": ML1M, "ratings.csv": MLLatest, "x.jsonl": JSONL, "y.csv": CSV} {
		if got, err := DetectFormat(path); err != nil || got != want {
			t.Errorf("DetectFormat(%s) = %v, %v; want %v", path, got, err, want)
		}
	}
	if _, err := DetectFormat("data.bin"); err == nil {
		t.Error("DetectFormat(data.bin) succeeded, want an error asking for -format")
	}
}
