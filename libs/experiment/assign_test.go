package experiment

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestAssignIsStickyAndWeighted(t *testing.T) {
	c := &Config{ID: "e", Salt: "s", Arms: []Arm{{Name: "a", Weight: 70}, {Name: "b", Weight: 20}, {Name: "c", Weight: 10}}}
	const users = 10_000
	counts := map[string]int{}
	for i := range users {
		u := fmt.Sprintf("user-%d", i)
		arm := c.Assign(u)
		counts[arm.Name]++
		for range 3 {
			if again := c.Assign(u); again.Name != arm.Name {
				t.Fatalf("Assign(%s) = %s then %s: not sticky", u, arm.Name, again.Name)
			}
		}
	}
	for _, a := range c.Arms {
		got := float64(counts[a.Name]) / users
		want := a.Weight / 100
		if math.Abs(got-want) > 0.02 {
			t.Errorf("arm %s got %.3f of users, want %.2f ± 0.02", a.Name, got, want)
		}
	}
	// Another salt reshuffles.
	d := *c
	d.Salt = "other"
	moved := 0
	for i := range 1000 {
		u := fmt.Sprintf("user-%d", i)
		if c.Assign(u).Name != d.Assign(u).Name {
			moved++
		}
	}
	if moved == 0 {
		t.Error("a new salt moved no user")
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	os.WriteFile(good, []byte(`{"id":"exp","salt":"x","arms":[{"name":"control","model_version":"v1","weight":1},{"name":"treatment","model_version":"v2","weight":1}]}`), 0o644)
	c, err := Load(good)
	if err != nil || len(c.Versions()) != 2 {
		t.Fatalf("Load(good) = %v, %v", c, err)
	}
	for name, body := range map[string]string{
		"unknown field": `{"id":"e","arms":[{"name":"a","weight":1,"wieght":2}]}`,
		"zero weight":   `{"id":"e","arms":[{"name":"a","weight":0}]}`,
		"no arms":       `{"id":"e","arms":[]}`,
		"repeated arm":  `{"id":"e","arms":[{"name":"a","weight":1},{"name":"a","weight":1}]}`,
	} {
		p := filepath.Join(dir, "bad.json")
		os.WriteFile(p, []byte(body), 0o644)
		if _, err := Load(p); err == nil {
			t.Errorf("Load(%s) succeeded, want an error", name)
		}
	}
}
