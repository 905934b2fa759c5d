package slo

import (
	"encoding/json"
	"path/filepath"
	"reflect"
	"testing"
)

// TestForeignFormatsMatchNativeTwins shows that a Sloth spec and OpenSLO
// documents load into the same SLOs as their native twins, positions aside.
func TestForeignFormatsMatchNativeTwins(t *testing.T) {
	tests := []struct {
		name    string
		foreign string
		slos    int
	}{
		{name: "sloth", foreign: "twins/sloth/sloth.yaml", slos: 2},
		{name: "openslo", foreign: "twins/openslo/openslo.yaml", slos: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			native := filepath.Join(definitions, filepath.Dir(tt.foreign), "native.yaml")
			want, diags := Load(native)
			if len(diags) != 0 {
				t.Fatalf("native twin:\n%s", diags)
			}
			got, diags := Load(filepath.Join(definitions, tt.foreign))
			if len(diags) != 0 {
				t.Fatalf("%s:\n%s", tt.foreign, diags)
			}
			if len(got.SLOs) != tt.slos || len(want.SLOs) != tt.slos {
				t.Fatalf("got %d SLOs, native twin %d, want %d", len(got.SLOs), len(want.SLOs), tt.slos)
			}
			for i := range got.SLOs {
				g, w := comparable(got.SLOs[i]), comparable(want.SLOs[i])
				if !reflect.DeepEqual(g, w) {
					gj, _ := json.MarshalIndent(g, "", "  ")
					wj, _ := json.MarshalIndent(w, "", "  ")
					t.Errorf("SLO %d differs from its native twin\n--- %s\n%s\n--- native\n%s", i, tt.foreign, gj, wj)
				}
			}
		})
	}
}

// comparable drops what legitimately differs between twins: positions, and
// nil versus empty maps.
func comparable(o *SLO) SLO {
	c := *o
	c.Pos, c.Source = Pos{}, Source{} // where it came from, not what it is
	nilEmpty := func(m map[string]string) map[string]string {
		if len(m) == 0 {
			return nil
		}
		return m
	}
	c.Labels = nilEmpty(c.Labels)
	c.Alerting.Labels = nilEmpty(c.Alerting.Labels)
	c.Alerting.Annotations = nilEmpty(c.Alerting.Annotations)
	for _, tier := range []*AlertTier{&c.Alerting.Page, &c.Alerting.Ticket} {
		tier.Labels = nilEmpty(tier.Labels)
		tier.Annotations = nilEmpty(tier.Annotations)
	}
	return c
}
