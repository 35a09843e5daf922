package kernel

import (
	"errors"
	"log/slog"
	"time"
)

// Reverter collects, step by step, the undo of a multi-step operation (a
// restore, a move, a storage migration): each step that changed something
// registers how to take it back right after it succeeded. If the operation
// fails, Fail runs the undos, newest first; once it succeeded, Success
// drops them. The usual form:
//
//	r := kernel.NewReverter(log)
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

// NewReverter returns an empty reverter that logs undos that fail.
func NewReverter(log *slog.Logger) *Reverter { return &Reverter{log: log} }

// Add registers the undo of a step that has just succeeded.
func (r *Reverter) Add(what string, undo func() error) {
	r.undo = append(r.undo, undoStep{what: what, fn: undo})
}

// Success keeps every step: a later Fail does nothing.
func (r *Reverter) Success() { r.done = true }

// Fail undoes the registered steps, newest first, unless Success was
// called. Every undo runs even when an earlier one failed; their errors are
// logged (and kept for Err): recovery repairs what an undo could not.
func (r *Reverter) Fail() {
	if r.done {
		return
	}
	r.done = true
	var errs []error
	for i := len(r.undo) - 1; i >= 0; i-- {
		if err := r.undo[i].fn(); err != nil {
			if r.log != nil {
				r.log.Warn("undo failed", "step", r.undo[i].what, "err", err)
			}
			errs = append(errs, err)
		}
	}
	r.err = errors.Join(errs...)
}

// Err returns the errors of the undos that failed.
func (r *Reverter) Err() error { return r.err }

// retryWrite runs a store write that must not be lost (an operation's final
// state, a lock's release) up to five times with a growing pause; the
// error of the last attempt is returned.
func retryWrite(write func() error) error {
	var err error
	pause := 20 * time.Millisecond
	for i := 0; i < 5; i++ {
		if err = write(); err == nil {
			return nil
		}
		time.Sleep(pause)
		pause *= 2
	}
	return err
}
