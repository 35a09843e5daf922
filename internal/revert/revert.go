package revert

import (
	"fmt"
	"log/slog"
)

// Reverter collects, step by step, the undo of a multi-step operation (a
// restore, a move, a storage migration): each step that changed something
// registers how to take it back right after it succeeded. If the operation
// fails, Fail runs the undos, newest first; once it succeeded, Success
// drops them. The usual form:
//
//	r := revert.New(log)
//	defer r.Fail()
//	... step; r.Add("what", undo) ...
//	r.Success()
type Reverter struct {
	log  *slog.Logger
	done bool
	undo []undoStep
	err  error
}

type undoStep struct {
	what string
	fn   func() error
}

// New returns an empty reverter that logs undos that fail.
func New(log *slog.Logger) *Reverter { return &Reverter{log: log} }

// Add registers the undo of a step that has just succeeded.
func (r *Reverter) Add(what string, undo func() error) {
	r.undo = append(r.undo, undoStep{what: what, fn: undo})
}

// Success keeps every step: a later Fail does nothing.
func (r *Reverter) Success() { r.done = true }

// Fail undoes the registered steps, newest first, unless Success was
// called. An undo that fails stops there: the steps before it may be what
// the step that could not be undone still needs (files a defined domain
// uses). Its error is logged and kept for Err; recovery repairs the rest.
func (r *Reverter) Fail() {
	if r.done {
		return
	}
	r.done = true
	for i := len(r.undo) - 1; i >= 0; i-- {
		if err := r.undo[i].fn(); err != nil {
			if r.log != nil {
				r.log.Warn("undo failed; the steps before it stay", "step", r.undo[i].what, "err", err)
			}
			r.err = fmt.Errorf("undo %s: %w", r.undo[i].what, err)
			return
		}
	}
}

// Err returns the errors of the undos that failed.
func (r *Reverter) Err() error { return r.err }
