package modelrt

import "testing"

// FuzzParseMetadata: any bytes give metadata or an error, never a panic;
// what parses also validates and assembles rows.
func FuzzParseMetadata(f *testing.F) {
	f.Add([]byte(`{"name":"ctr","version":"v1","input_name":"features","output_name":"score","features":[{"name":"a","source":"item.ctr","default":0.05},{"name":"b","source":"user_id","transform":"hash"}],"id_hashing":{"salt":"s","buckets":10},"created_at":"2026-11-01T00:00:00Z"}`))
	f.Add([]byte(`{"features":[{"name":"x","source":"bogus"}]}`))
	f.Add([]byte(`{`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseMetadata(b)
		if err != nil {
			return
		}
		rows := m.Rows("u", nil, []string{"i1", "i2"}, nil, nil, nil)
		if len(rows) != 2*len(m.Features) {
			t.Fatalf("Rows gave %d floats for 2 items of width %d", len(rows), len(m.Features))
		}
	})
}
