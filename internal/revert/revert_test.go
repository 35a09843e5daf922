package revert

import (
	"errors"
	"reflect"
	"testing"
)

func TestFailUndoesNewestFirstAndStopsAtAFailedUndo(t *testing.T) {
	var done []string
	step := func(name string, err error) func() error {
		return func() error { done = append(done, name); return err }
	}
	r := New(nil)
	r.Add("a", step("a", nil))
	r.Add("b", step("b", errors.New("busy")))
	r.Add("c", step("c", nil))
	r.Fail()
	if !reflect.DeepEqual(done, []string{"c", "b"}) {
		t.Fatalf("undone %v, want c then b, and a kept", done)
	}
	if r.Err() == nil {
		t.Fatal("a failed undo is not reported")
	}
	r.Fail() // twice is once
	if len(done) != 2 {
		t.Fatalf("second Fail undid again: %v", done)
	}
}

func TestSuccessKeepsEveryStep(t *testing.T) {
	undone := false
	r := New(nil)
	r.Add("a", func() error { undone = true; return nil })
	r.Success()
	r.Fail()
	if undone || r.Err() != nil {
		t.Fatal("a succeeded operation was undone")
	}
}
