package faultproxy

import (
	"encoding/json"
	"testing"
)

// TestForQueryInUnion: in the answer to a union, only the target query's
// term is rewritten, and it keeps its union label.
func TestForQueryInUnion(t *testing.T) {
	target := `sum(rate(errors_total[5m]))`
	union := `label_replace(sum(rate(requests_total[5m])), "__slogate_union", "0", "", "") or label_replace(sum(rate(errors_total[5m])), "__slogate_union", "1", "", "")`
	body := []byte(`{"status":"success","data":{"resultType":"vector","result":[` +
		`{"metric":{"__slogate_union":"0"},"value":[1,"10"]},{"metric":{"__slogate_union":"1"},"value":[1,"2"]}]}}`)
	rw := ForQuery(target, func(s []Sample) []Sample {
		if len(s) != 1 || len(s[0].Metric) != 0 {
			t.Errorf("fn got %+v, want the target's one sample without the union label", s)
		}
		for i := range s {
			s[i].Value = "NaN"
		}
		return s
	})
	var got struct {
		Data struct{ Result []Sample } `json:"data"`
	}
	if err := json.Unmarshal(rw(union, body), &got); err != nil {
		t.Fatal(err)
	}
	values := map[string]string{}
	for _, s := range got.Data.Result {
		values[s.Metric["__slogate_union"]] = s.Value
	}
	if values["0"] != "10" || values["1"] != "NaN" {
		t.Errorf("rewritten union answer %v, want member 0 untouched and member 1 NaN", values)
	}
	if string(rw(`other`, body)) != string(body) {
		t.Errorf("an unrelated query's answer was changed")
	}
}
