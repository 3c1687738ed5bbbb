package experiment

import (
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"os"
	"strings"
)

// Config is one experiment: arms pinned to model versions, with traffic
// weights. It is read from a JSON file:
//
//	{"id": "default", "salt": "2026-11", "arms": [
//	  {"name": "control", "model_version": "v1", "weight": 50},
//	  {"name": "treatment", "model_version": "v2", "weight": 50}]}
//
// An empty model_version means the newest ready model.
type Config struct {
	ID   string `json:"id"`
	Salt string `json:"salt"`
	Arms []Arm  `json:"arms"`
}

// Arm is one variant of an experiment.
type Arm struct {
	Name         string  `json:"name"`
	ModelVersion string  `json:"model_version"`
	Weight       float64 `json:"weight"`
}

// Default is the experiment when none is configured: one arm, the newest
// model.
func Default() *Config {
	return &Config{ID: "default", Salt: "default", Arms: []Arm{{Name: DefaultControl, Weight: 1}}}
}

// Load reads and checks an experiment file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("experiment file: %w", err)
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	c := &Config{}
	if err := dec.Decode(c); err != nil {
		return nil, fmt.Errorf("experiment file %s: %w", path, err)
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("experiment file %s: %w", path, err)
	}
	return c, nil
}

// Validate reports every problem at once.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" || strings.ContainsAny(c.ID, "{}") {
		errs = append(errs, fmt.Errorf("id %q: want a non-empty id without braces", c.ID))
	}
	if len(c.Arms) == 0 {
		errs = append(errs, errors.New("arms: at least one is required"))
	}
	seen := map[string]bool{}
	for i, a := range c.Arms {
		if a.Name == "" || seen[a.Name] {
			errs = append(errs, fmt.Errorf("arms[%d]: name %q is empty or repeated", i, a.Name))
		}
		seen[a.Name] = true
		if !(a.Weight > 0) {
			errs = append(errs, fmt.Errorf("arms[%d] (%s): weight %v must be positive", i, a.Name, a.Weight))
		}
	}
	return errors.Join(errs...)
}

// Assign returns the user's arm: a hash of (salt, user id) placed on the
// arms' cumulative weights, so a user stays in one arm for the life of the
// salt.
func (c *Config) Assign(userID string) Arm {
	h := fnv.New64a()
	h.Write([]byte(c.Salt))
	h.Write([]byte{0})
	h.Write([]byte(userID))
	// FNV mixes similar ids (user-1, user-2) poorly in its high bits; the
	// murmur3 finaliser spreads them. The top 53 bits become a uniform
	// fraction in [0, 1).
	x := h.Sum64()
	x ^= x >> 33
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	x *= 0xc4ceb9fe1a85ec53
	x ^= x >> 33
	u := float64(x>>11) / float64(uint64(1)<<53)
	total := 0.0
	for _, a := range c.Arms {
		total += a.Weight
	}
	acc := 0.0
	for _, a := range c.Arms {
		acc += a.Weight / total
		if u < acc {
			return a
		}
	}
	return c.Arms[len(c.Arms)-1]
}

// Arm returns the arm of that name.
func (c *Config) Arm(name string) (Arm, bool) {
	for _, a := range c.Arms {
		if a.Name == name {
			return a, true
		}
	}
	return Arm{}, false
}

// ArmNames lists the arms.
func (c *Config) ArmNames() []string {
	out := make([]string, len(c.Arms))
	for i, a := range c.Arms {
		out[i] = a.Name
	}
	return out
}

// Versions lists the model versions the arms pin (not the empty "newest").
func (c *Config) Versions() []string {
	var out []string
	for _, a := range c.Arms {
		if a.ModelVersion != "" {
			out = append(out, a.ModelVersion)
		}
	}
	return out
}
