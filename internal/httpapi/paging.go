package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"time"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/store"
)

// paged is the answer of a list route: a JSON array of one page of items,
// and the cursor of the next page in the api.NextCursorHeader header.
type paged[T any] struct {
	items []T
	next  string
}

// pager is what writeJSON and the OpenAPI document see of a paged answer.
type pager interface {
	pageItems() any // the items, a slice (never nil)
	nextCursor() string
}

func (p paged[T]) pageItems() any {
	if p.items == nil {
		return []T{}
	}
	return p.items
}

func (p paged[T]) nextCursor() string { return p.next }

// pageOf maps a page of store items to API items with the next cursor.
func pageOf[T, U any](list []T, next *store.Cursor, f func(T) U) paged[U] {
	return paged[U]{items: mapList(list, f), next: encodeCursor(next)}
}

// wireCursor is a cursor as it travels, opaque to clients: base64url of
// this JSON.
type wireCursor struct {
	Time time.Time `json:"t,omitzero"`
	Name string    `json:"n,omitempty"`
	ID   string    `json:"i"`
}

func encodeCursor(c *store.Cursor) string {
	if c == nil {
		return ""
	}
	raw, err := json.Marshal(wireCursor{Time: c.Time, Name: c.Name, ID: c.ID})
	if err != nil {
		return "" // a cursor of strings and a time always encodes
	}
	return base64.RawURLEncoding.EncodeToString(raw)
}

// storePage checks a request's paging: a limit from 1 to api.MaxPage
// (0: api.DefaultPage) and a cursor that this server wrote.
func storePage(q api.Paging) (store.Page, error) {
	p := store.Page{Limit: q.Limit}
	switch {
	case q.Limit == 0:
		p.Limit = api.DefaultPage
	case q.Limit < 0 || q.Limit > api.MaxPage:
		return p, &badRequest{field: "limit", msg: "limit: must be from 1 to 1000"}
	}
	if q.Cursor == "" {
		return p, nil
	}
	bad := &badRequest{field: "cursor", msg: "cursor: not a cursor of this list; pass the Knib-Next-Cursor header of the page before"}
	if len(q.Cursor) > 1024 {
		return p, bad
	}
	raw, err := base64.RawURLEncoding.DecodeString(q.Cursor)
	if err != nil {
		return p, bad
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	var c wireCursor
	if err := dec.Decode(&c); err != nil || c.ID == "" || len(c.ID) > 255 || len(c.Name) > 255 || dec.More() {
		return p, bad
	}
	p.After = &store.Cursor{Time: c.Time, Name: c.Name, ID: c.ID}
	return p, nil
}
