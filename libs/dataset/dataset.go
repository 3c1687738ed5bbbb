// Package dataset reads users, items and ratings from files: JSON lines,
// CSV with a header, and the MovieLens files exactly as distributed
// (ml-100k's u.user, u.item and u.data; ml-1m's and ml-10m's users.dat,
// movies.dat and ratings.dat; ml-latest's, ml-20m's and ml-25m's
// movies.csv and ratings.csv). The ingestion CLI loads them into the feature store; the
// trainer learns from them.
//
// Readers stream: each yields one record per good row and a *LineError,
// naming file and line, per bad one (the caller decides to skip or abort);
// any other error ends the stream.
package dataset

import (
	"bufio"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"iter"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protojson"

	itemfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/itemfeatures/v1"
	userfeaturesv1 "github.com/recsys/recsys/gen/go/recsys/userfeatures/v1"
)

// Format is a file layout.
type Format string

// The formats.
const (
	JSONL    Format = "jsonl"     // one JSON object per line (protobuf JSON for users and items)
	CSV      Format = "csv"       // a header row, then rows; see the readers for columns
	ML100K   Format = "ml-100k"   // u.user, u.item, u.data
	ML1M     Format = "ml-1m"     // users.dat, movies.dat, ratings.dat ("::"-separated; ml-10m too)
	MLLatest Format = "ml-latest" // movies.csv, ratings.csv
)

// DetectFormat guesses the format from a file name.
func DetectFormat(path string) (Format, error) {
	base := strings.ToLower(filepath.Base(path))
	switch {
	case base == "u.user" || base == "u.item" || base == "u.data":
		return ML100K, nil
	case base == "users.dat" || base == "movies.dat" || base == "ratings.dat":
		return ML1M, nil
	case base == "movies.csv" || base == "ratings.csv":
		return MLLatest, nil
	case strings.HasSuffix(base, ".jsonl") || strings.HasSuffix(base, ".ndjson"):
		return JSONL, nil
	case strings.HasSuffix(base, ".csv"):
		return CSV, nil
	}
	return "", fmt.Errorf("%s: cannot tell the format from the name; pass -format (jsonl, csv, ml-100k, ml-1m or ml-latest)", path)
}

// LineError is one bad row.
type LineError struct {
	File string
	Line int
	Err  error
}

func (e *LineError) Error() string { return fmt.Sprintf("%s:%d: %v", e.File, e.Line, e.Err) }
func (e *LineError) Unwrap() error { return e.Err }

// Rating is one user's rating of one item.
type Rating struct {
	UserID string
	ItemID string
	Rating float64
	Time   time.Time
}

// ml100kGenres are the genre flag columns of u.item, in order.
var ml100kGenres = []string{"unknown", "Action", "Adventure", "Animation", "Children's", "Comedy", "Crime",
	"Documentary", "Drama", "Fantasy", "Film-Noir", "Horror", "Musical", "Mystery", "Romance", "Sci-Fi",
	"Thriller", "War", "Western"}

// ml1mOccupations are the occupations users.dat codes as 0..20.
var ml1mOccupations = []string{"other", "academic/educator", "artist", "clerical/admin", "college/grad student",
	"customer service", "doctor/health care", "executive/managerial", "farmer", "homemaker", "K-12 student",
	"lawyer", "programmer", "retired", "sales/marketing", "scientist", "self-employed", "technician/engineer",
	"tradesman/craftsman", "unemployed", "writer"}

var titleYear = regexp.MustCompile(`\((\d{4})\)\s*$`)

// Users reads user profiles; a row failing one of the checks is a bad row. CSV columns: user_id, age, gender, occupation,
// zip_code; other columns become attributes. ml-100k: u.user; ml-1m:
// users.dat (its age is the code of the age group: 1 is under 18, 18 is
// 18-24, and so on).
func Users(r io.Reader, name string, f Format, checks ...func(*userfeaturesv1.UserProfile) error) iter.Seq2[*userfeaturesv1.UserProfile, error] {
	return users(r, name, f, checks)
}

func users(r io.Reader, name string, f Format, checks []func(*userfeaturesv1.UserProfile) error) iter.Seq2[*userfeaturesv1.UserProfile, error] {
	switch f {
	case JSONL:
		return jsonLines(r, name, checks, func(line []byte) (*userfeaturesv1.UserProfile, error) {
			u := &userfeaturesv1.UserProfile{}
			return u, protojson.Unmarshal(line, u)
		})
	case CSV:
		return csvRows(r, name, checks, []string{"user_id"}, func(row map[string]string) (*userfeaturesv1.UserProfile, error) {
			u := &userfeaturesv1.UserProfile{UserId: row["user_id"], Gender: row["gender"], Occupation: row["occupation"], ZipCode: row["zip_code"]}
			if a := row["age"]; a != "" {
				age, err := strconv.Atoi(a)
				if err != nil {
					return nil, fmt.Errorf("age %q is not a whole number", a)
				}
				u.Age = int32(age)
			}
			u.Attributes = extra(row, "user_id", "age", "gender", "occupation", "zip_code")
			return u, nil
		})
	case ML100K:
		return pipeRows(r, name, checks, 5, func(c []string) (*userfeaturesv1.UserProfile, error) {
			age, err := strconv.Atoi(c[1])
			if err != nil {
				return nil, fmt.Errorf("age %q is not a whole number", c[1])
			}
			return &userfeaturesv1.UserProfile{UserId: c[0], Age: int32(age), Gender: c[2], Occupation: c[3], ZipCode: c[4]}, nil
		})
	case ML1M:
		return datRows(r, name, checks, 5, func(c []string) (*userfeaturesv1.UserProfile, error) {
			age, err := strconv.Atoi(c[2])
			if err != nil {
				return nil, fmt.Errorf("age %q is not a whole number", c[2])
			}
			occ, err := strconv.Atoi(c[3])
			if err != nil || occ < 0 || occ >= len(ml1mOccupations) {
				return nil, fmt.Errorf("occupation %q is not a code 0..%d", c[3], len(ml1mOccupations)-1)
			}
			return &userfeaturesv1.UserProfile{UserId: c[0], Gender: c[1], Age: int32(age), Occupation: ml1mOccupations[occ], ZipCode: c[4]}, nil
		})
	}
	return fail[*userfeaturesv1.UserProfile](fmt.Errorf("%s: users cannot be read from the %s format", name, f))
}

// Items reads item attributes; a row failing one of the checks is a bad row. CSV columns: item_id, title, categories
// ("|"-separated), year; other columns become attributes. ml-100k: u.item;
// ml-1m: movies.dat; ml-latest: movies.csv.
func Items(r io.Reader, name string, f Format, checks ...func(*itemfeaturesv1.ItemAttributes) error) iter.Seq2[*itemfeaturesv1.ItemAttributes, error] {
	return items(r, name, f, checks)
}

func items(r io.Reader, name string, f Format, checks []func(*itemfeaturesv1.ItemAttributes) error) iter.Seq2[*itemfeaturesv1.ItemAttributes, error] {
	switch f {
	case JSONL:
		return jsonLines(r, name, checks, func(line []byte) (*itemfeaturesv1.ItemAttributes, error) {
			it := &itemfeaturesv1.ItemAttributes{}
			return it, protojson.Unmarshal(line, it)
		})
	case CSV:
		return csvRows(r, name, checks, []string{"item_id"}, func(row map[string]string) (*itemfeaturesv1.ItemAttributes, error) {
			it := &itemfeaturesv1.ItemAttributes{ItemId: row["item_id"], Title: row["title"], Categories: splitGenres(row["categories"])}
			if y := row["year"]; y != "" {
				year, err := strconv.Atoi(y)
				if err != nil {
					return nil, fmt.Errorf("year %q is not a whole number", y)
				}
				it.Year = int32(year)
			}
			it.Attributes = extra(row, "item_id", "title", "categories", "year")
			return it, nil
		})
	case ML100K:
		return pipeRows(r, name, checks, 5+len(ml100kGenres), func(c []string) (*itemfeaturesv1.ItemAttributes, error) {
			it := &itemfeaturesv1.ItemAttributes{ItemId: c[0], Title: c[1], Year: yearOf(c[1], c[2])}
			for i, g := range ml100kGenres {
				switch c[5+i] {
				case "1":
					it.Categories = append(it.Categories, g)
				case "0":
				default:
					return nil, fmt.Errorf("genre flag %s is %q, want 0 or 1", g, c[5+i])
				}
			}
			if c[4] != "" {
				it.Attributes = map[string]string{"imdb_url": c[4]}
			}
			return it, nil
		})
	case ML1M:
		return datRows(r, name, checks, 3, func(c []string) (*itemfeaturesv1.ItemAttributes, error) {
			return &itemfeaturesv1.ItemAttributes{ItemId: c[0], Title: c[1], Categories: splitGenres(c[2]), Year: yearOf(c[1], "")}, nil
		})
	case MLLatest:
		return csvRows(r, name, checks, []string{"movieId", "title", "genres"}, func(row map[string]string) (*itemfeaturesv1.ItemAttributes, error) {
			return &itemfeaturesv1.ItemAttributes{ItemId: row["movieId"], Title: row["title"], Categories: splitGenres(row["genres"]), Year: yearOf(row["title"], "")}, nil
		})
	}
	return fail[*itemfeaturesv1.ItemAttributes](fmt.Errorf("%s: items cannot be read from the %s format", name, f))
}

// Ratings reads ratings; a row failing one of the checks is a bad row. CSV and JSONL fields: user_id, item_id, rating,
// timestamp (Unix seconds). ml-100k: u.data; ml-1m: ratings.dat;
// ml-latest: ratings.csv.
func Ratings(r io.Reader, name string, f Format, checks ...func(Rating) error) iter.Seq2[Rating, error] {
	return ratings(r, name, f, checks)
}

func ratings(r io.Reader, name string, f Format, checks []func(Rating) error) iter.Seq2[Rating, error] {
	switch f {
	case JSONL:
		return jsonLines(r, name, checks, func(line []byte) (Rating, error) {
			var v struct {
				UserID    string  `json:"user_id"`
				ItemID    string  `json:"item_id"`
				Rating    float64 `json:"rating"`
				Timestamp int64   `json:"timestamp"`
			}
			if err := json.Unmarshal(line, &v); err != nil {
				return Rating{}, err
			}
			return checkRating(Rating{v.UserID, v.ItemID, v.Rating, time.Unix(v.Timestamp, 0)}, v.Timestamp)
		})
	case CSV:
		return csvRows(r, name, checks, []string{"user_id", "item_id", "rating", "timestamp"}, func(row map[string]string) (Rating, error) {
			return parseRating(row["user_id"], row["item_id"], row["rating"], row["timestamp"])
		})
	case MLLatest:
		return csvRows(r, name, checks, []string{"userId", "movieId", "rating", "timestamp"}, func(row map[string]string) (Rating, error) {
			return parseRating(row["userId"], row["movieId"], row["rating"], row["timestamp"])
		})
	case ML100K:
		return lines(r, name, checks, func(line string) (Rating, error) {
			c := strings.Split(line, "\t")
			if len(c) != 4 {
				return Rating{}, fmt.Errorf("%d tab-separated fields, want 4 (user, item, rating, timestamp)", len(c))
			}
			return parseRating(c[0], c[1], c[2], c[3])
		})
	case ML1M:
		return datRows(r, name, checks, 4, func(c []string) (Rating, error) {
			return parseRating(c[0], c[1], c[2], c[3])
		})
	}
	return fail[Rating](fmt.Errorf("%s: ratings cannot be read from the %s format", name, f))
}

func parseRating(user, item, rating, ts string) (Rating, error) {
	v, err := strconv.ParseFloat(rating, 64)
	if err != nil {
		return Rating{}, fmt.Errorf("rating %q is not a number", rating)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return Rating{}, fmt.Errorf("timestamp %q is not Unix seconds", ts)
	}
	return checkRating(Rating{user, item, v, time.Unix(sec, 0)}, sec)
}

func checkRating(r Rating, sec int64) (Rating, error) {
	switch {
	case r.UserID == "" || r.ItemID == "":
		return Rating{}, errors.New("user and item ids are required")
	case r.Rating < 0 || r.Rating > 10:
		return Rating{}, fmt.Errorf("rating %v is outside 0..10", r.Rating)
	case sec <= 0:
		return Rating{}, fmt.Errorf("timestamp %d is not a positive Unix time", sec)
	}
	return r, nil
}

func yearOf(title, date string) int32 {
	if m := titleYear.FindStringSubmatch(title); m != nil {
		y, _ := strconv.Atoi(m[1])
		return int32(y)
	}
	if len(date) >= 4 {
		if y, err := strconv.Atoi(date[len(date)-4:]); err == nil {
			return int32(y)
		}
	}
	return 0
}

func splitGenres(s string) []string {
	if s == "" || s == "(no genres listed)" {
		return nil
	}
	return strings.Split(s, "|")
}

func extra(row map[string]string, known ...string) map[string]string {
	var out map[string]string
	for k, v := range row {
		if v == "" || contains(known, k) {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[k] = v
	}
	return out
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// text returns a line as UTF-8: the MovieLens 100k and 1m files are
// ISO-8859-1.
func text(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	r := make([]rune, len(b))
	for i, c := range b {
		r[i] = rune(c)
	}
	return string(r)
}

func fail[T any](err error) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		yield(zero, err)
	}
}

// lines yields parse(line) for each non-empty line, numbering lines from 1.
func lines[T any](r io.Reader, name string, checks []func(T) error, parse func(string) (T, error)) iter.Seq2[T, error] {
	parse = thenCheck(parse, checks)
	return func(yield func(T, error) bool) {
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		n := 0
		var zero T
		for sc.Scan() {
			n++
			line := strings.TrimRight(text(sc.Bytes()), "\r")
			if strings.TrimSpace(line) == "" {
				continue
			}
			v, err := parse(line)
			if err != nil {
				if !yield(zero, &LineError{name, n, err}) {
					return
				}
				continue
			}
			if !yield(v, nil) {
				return
			}
		}
		if err := sc.Err(); err != nil {
			yield(zero, fmt.Errorf("read %s after line %d: %w", name, n, err))
		}
	}
}

func jsonLines[T any](r io.Reader, name string, checks []func(T) error, parse func([]byte) (T, error)) iter.Seq2[T, error] {
	return lines(r, name, checks, func(line string) (T, error) { return parse([]byte(line)) })
}

// thenCheck runs the checks on what parse made: a failure makes the row bad.
func thenCheck[P, T any](parse func(P) (T, error), checks []func(T) error) func(P) (T, error) {
	if len(checks) == 0 {
		return parse
	}
	return func(in P) (T, error) {
		v, err := parse(in)
		if err != nil {
			return v, err
		}
		for _, check := range checks {
			if err := check(v); err != nil {
				var zero T
				return zero, err
			}
		}
		return v, nil
	}
}

// pipeRows reads ml-100k's "|"-separated rows of exactly n fields.
func pipeRows[T any](r io.Reader, name string, checks []func(T) error, n int, parse func([]string) (T, error)) iter.Seq2[T, error] {
	return sepRows(r, name, checks, "|", n, parse)
}

// datRows reads ml-1m's "::"-separated rows of exactly n fields.
func datRows[T any](r io.Reader, name string, checks []func(T) error, n int, parse func([]string) (T, error)) iter.Seq2[T, error] {
	return sepRows(r, name, checks, "::", n, parse)
}

func sepRows[T any](r io.Reader, name string, checks []func(T) error, sep string, n int, parse func([]string) (T, error)) iter.Seq2[T, error] {
	return lines(r, name, checks, func(line string) (T, error) {
		c := strings.Split(line, sep)
		if len(c) != n {
			var zero T
			return zero, fmt.Errorf("%d %s-separated fields, want %d", len(c), sep, n)
		}
		if c[0] == "" {
			var zero T
			return zero, errors.New("id is empty")
		}
		return parse(c)
	})
}

// csvRows reads a CSV file with a header row that must name the required
// columns, yielding each row as a column → value map.
func csvRows[T any](r io.Reader, name string, checks []func(T) error, required []string, parse func(map[string]string) (T, error)) iter.Seq2[T, error] {
	parse = thenCheck(parse, checks)
	return func(yield func(T, error) bool) {
		var zero T
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		header, err := cr.Read()
		if err != nil {
			yield(zero, &LineError{name, 1, fmt.Errorf("read header: %w", err)})
			return
		}
		header = append([]string(nil), header...)
		for _, col := range required {
			if !contains(header, col) {
				yield(zero, fmt.Errorf("%s: the header %v has no %q column (need %v)", name, header, col, required))
				return
			}
		}
		for {
			rec, err := cr.Read()
			if err == io.EOF {
				return
			}
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					if !yield(zero, &LineError{name, pe.Line, pe.Err}) {
						return
					}
					continue
				}
				yield(zero, fmt.Errorf("read %s: %w", name, err))
				return
			}
			line, _ := cr.FieldPos(0) // only valid after a successful Read
			if len(rec) != len(header) {
				if !yield(zero, &LineError{name, line, fmt.Errorf("%d fields, the header has %d", len(rec), len(header))}) {
					return
				}
				continue
			}
			row := make(map[string]string, len(header))
			for i, col := range header {
				row[col] = text([]byte(rec[i]))
			}
			v, err := parse(row)
			if err != nil {
				if !yield(zero, &LineError{name, line, err}) {
					return
				}
				continue
			}
			if !yield(v, nil) {
				return
			}
		}
	}
}
