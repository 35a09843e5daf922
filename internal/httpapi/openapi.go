package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
)

func typeOf[T any]() reflect.Type { return reflect.TypeFor[T]() }

// Version is the API document version.
const Version = "1.0.0"

var pathParam = regexp.MustCompile(`\{([a-z_]+)\}`)

// OpenAPI returns the OpenAPI 3.1 document of the route table, as indented
// JSON with a trailing newline (the form checked into docs/openapi.json).
func (h *Handler) OpenAPI() []byte {
	g := &schemaGen{schemas: map[string]any{}}
	paths := map[string]map[string]any{}
	for _, rt := range h.routes {
		op := map[string]any{
			"summary":     rt.summary,
			"operationId": operationID(rt),
			"tags":        []string{rt.tag},
		}
		var params []any
		for _, m := range pathParam.FindAllStringSubmatch(rt.path, -1) {
			params = append(params, map[string]any{"name": m[1], "in": "path", "required": true, "schema": map[string]any{"type": "string"}})
		}
		if rt.query.Kind() == reflect.Struct {
			for _, f := range reflect.VisibleFields(rt.query) {
				name := f.Tag.Get("query")
				if name == "" {
					continue
				}
				p := map[string]any{"name": name, "in": "query", "required": false, "schema": g.schema(f.Type, false)}
				if d := f.Tag.Get("doc"); d != "" {
					p["description"] = d
				}
				params = append(params, p)
			}
		}
		if params != nil {
			op["parameters"] = params
		}
		if rt.body != typeOf[api.Empty]() {
			op["requestBody"] = map[string]any{"required": true, "content": map[string]any{
				"application/json": map[string]any{"schema": g.schema(rt.body, true)}}}
		}
		problem := map[string]any{"description": "error", "content": map[string]any{
			"application/problem+json": map[string]any{"schema": g.schema(typeOf[api.Problem](), false)}}}
		content := map[string]any{"application/json": map[string]any{"schema": g.schema(rt.resp, false)}}
		if rt.produces != "" {
			content = map[string]any{rt.produces: map[string]any{"schema": map[string]any{"type": "string", "contentMediaType": rt.produces}}}
		}
		answer := map[string]any{"description": http.StatusText(rt.status), "content": content}
		if rt.paged {
			answer["headers"] = map[string]any{api.NextCursorHeader: map[string]any{
				"description": "present when more items follow: pass it as cursor= to get them",
				"schema":      map[string]any{"type": "string"}}}
		}
		op["responses"] = map[string]any{
			itoa(rt.status): answer,
			"default":       problem,
		}
		if rt.public {
			op["security"] = []any{}
		}
		p := Prefix + rt.path
		if paths[p] == nil {
			paths[p] = map[string]any{}
		}
		paths[p][strings.ToLower(rt.method)] = op
	}
	doc := map[string]any{
		"openapi": "3.1.0",
		"info": map[string]any{
			"title":       "knib API",
			"version":     Version,
			"description": "Incremental, validated, quickly restorable backups for KVM/libvirt VMs. Every request except health and this document carries \"Authorization: Bearer <token>\". Errors are application/problem+json.",
		},
		"paths":    paths,
		"security": []any{map[string]any{"bearer": []any{}}},
		"components": map[string]any{
			"schemas":         g.schemas,
			"securitySchemes": map[string]any{"bearer": map[string]any{"type": "http", "scheme": "bearer"}},
		},
	}
	out, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err)
	}
	return append(out, '\n')
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func operationID(rt route) string {
	parts := []string{strings.ToLower(rt.method)}
	for _, seg := range strings.Split(strings.Trim(rt.path, "/"), "/") {
		seg = strings.Trim(seg, "{}")
		seg = strings.ReplaceAll(seg, ".", "_")
		seg = strings.ReplaceAll(seg, "-", "_")
		parts = append(parts, seg)
	}
	return strings.Join(parts, "_")
}

type schemaGen struct {
	schemas map[string]any
}

var timeType = reflect.TypeFor[time.Time]()

// schema returns the JSON schema of t; named structs go to components and are
// referenced. strict forbids additional properties (request bodies).
func (g *schemaGen) schema(t reflect.Type, strict bool) map[string]any {
	switch {
	case t == timeType:
		return map[string]any{"type": "string", "format": "date-time"}
	case t.Kind() == reflect.Pointer:
		s := g.schema(t.Elem(), strict)
		if typ, ok := s["type"].(string); ok {
			s["type"] = []string{typ, "null"}
			return s
		}
		return map[string]any{"oneOf": []any{s, map[string]any{"type": "null"}}}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return map[string]any{"type": "string", "contentEncoding": "base64"}
	case t.Kind() == reflect.Slice:
		return map[string]any{"type": "array", "items": g.schema(t.Elem(), strict)}
	case t.Kind() == reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), strict)}
	case t.Kind() == reflect.Interface:
		return map[string]any{}
	case t.Kind() == reflect.String:
		return map[string]any{"type": "string"}
	case t.Kind() == reflect.Bool:
		return map[string]any{"type": "boolean"}
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return map[string]any{"type": "integer"}
	case t.Kind() == reflect.Float32 || t.Kind() == reflect.Float64:
		return map[string]any{"type": "number"}
	case t.Kind() == reflect.Struct:
		name := t.Name()
		if name == "" {
			return g.object(t, strict)
		}
		if strict {
			name += "Request"
		}
		if _, ok := g.schemas[name]; !ok {
			g.schemas[name] = map[string]any{} // break cycles
			g.schemas[name] = g.object(t, strict)
		}
		return map[string]any{"$ref": "#/components/schemas/" + name}
	}
	return map[string]any{}
}

func (g *schemaGen) object(t reflect.Type, strict bool) map[string]any {
	props := map[string]any{}
	var required []string
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		if tag == "-" || !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		s := g.schema(f.Type, strict)
		if f.Tag.Get("schema") == "opresult" {
			s = g.opResult()
		}
		if d := f.Tag.Get("doc"); d != "" {
			if _, isRef := s["$ref"]; isRef {
				s = map[string]any{"allOf": []any{s}, "description": d}
			} else {
				s["description"] = d
			}
		}
		props[name] = s
		if !strings.Contains(opts, "omitempty") {
			required = append(required, name)
		}
	}
	sort.Strings(required)
	o := map[string]any{"type": "object", "properties": props}
	if len(required) > 0 {
		o["required"] = required
	}
	if strict {
		o["additionalProperties"] = false
	}
	return o
}

// opResult returns the schema of an operation's result: one of the named
// result types, chosen by the operation's kind (x-kind-mapping; the kind is a
// property of the operation, not of the result), or null.
func (g *schemaGen) opResult() map[string]any {
	var one []any
	mapping := map[string]any{}
	for _, r := range domain.OpResults() {
		ref := g.schema(reflect.TypeOf(r), false)
		one = append(one, ref)
		mapping[r.OpKind()] = ref["$ref"]
	}
	one = append(one, map[string]any{"type": "null"})
	return map[string]any{"oneOf": one, "x-kind-mapping": map[string]any{"propertyName": "kind", "mapping": mapping}}
}
