package store

import (
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
)

// Page bounds a list: at most Limit items (0: no bound) that come after
// the item After points at (nil: from the first), in the list's order. A
// list that reads whole tables does not scale; the API pages every list.
type Page struct {
	Limit int
	After *Cursor
}

// Cursor is the sort key of the last item of a page: the time (backups,
// jobs, operations) or the name (VMs) the list is ordered by, then the id.
type Cursor struct {
	Time time.Time
	Name string
	ID   string
}

// BackupCursor, VMCursor, JobCursor and OperationCursor point after an item
// of their list.
func BackupCursor(b domain.Backup) *Cursor       { return &Cursor{Time: b.Created, ID: b.ID} }
func VMCursor(v domain.VM) *Cursor               { return &Cursor{Name: v.Name, ID: v.ID} }
func JobCursor(j jobs.Job) *Cursor               { return &Cursor{Time: j.Scheduled, ID: j.ID} }
func OperationCursor(o domain.Operation) *Cursor { return &Cursor{Time: o.Created, ID: o.ID} }

// OneMore is the page to read to learn whether another page follows: one
// item more than the limit (unbounded stays unbounded).
func (p Page) OneMore() Page {
	if p.Limit > 0 {
		p.Limit++
	}
	return p
}

// Cut trims a list read with p.OneMore() to the page, and returns the
// cursor of the next page, nil when this page is the last.
func Cut[T any](p Page, list []T, cursor func(T) *Cursor) ([]T, *Cursor) {
	if p.Limit <= 0 || len(list) <= p.Limit {
		return list, nil
	}
	list = list[:p.Limit]
	return list, cursor(list[len(list)-1])
}
