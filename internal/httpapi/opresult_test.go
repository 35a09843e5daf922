package httpapi_test

import (
	"encoding/json"
	"testing"

	"github.com/knib/knib/internal/domain"
)

// Every registered operation result is a named schema in the OpenAPI
// document and is listed in the operation's result oneOf under its kind.
func TestOpResultsInOpenAPI(t *testing.T) {
	e := newEnv(t)
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					OneOf   []map[string]any `json:"oneOf"`
					Mapping struct {
						Mapping map[string]string `json:"mapping"`
					} `json:"x-kind-mapping"`
				} `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(e.handle.OpenAPI(), &doc); err != nil {
		t.Fatal(err)
	}
	res := doc.Components.Schemas["Operation"].Properties["result"]
	refs := map[string]bool{}
	for _, o := range res.OneOf {
		if r, ok := o["$ref"].(string); ok {
			refs[r] = true
		}
	}
	if len(res.Mapping.Mapping) != len(domain.OpResults()) {
		t.Errorf("kind mapping has %d kinds, registry %d", len(res.Mapping.Mapping), len(domain.OpResults()))
	}
	for kind, ref := range res.Mapping.Mapping {
		if !refs[ref] {
			t.Errorf("kind %s maps to %s, not in oneOf", kind, ref)
		}
	}
	for _, r := range domain.OpResults() {
		ref := res.Mapping.Mapping[r.OpKind()]
		if ref == "" {
			t.Errorf("kind %s has no result schema", r.OpKind())
			continue
		}
		name := ref[len("#/components/schemas/"):]
		if _, ok := doc.Components.Schemas[name]; !ok {
			t.Errorf("kind %s: schema %s missing from components", r.OpKind(), name)
		}
	}
}
