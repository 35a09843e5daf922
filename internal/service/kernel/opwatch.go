package kernel

import "sync"

// opWatch tells in-process readers (the event stream) that an operation
// of this process was written, so that they read it at once instead of at
// their next poll; operations of other servers are still polled.
type opWatch struct {
	mu sync.Mutex
	ch chan struct{}
}

// changed returns a channel closed at the next operation write.
func (w *opWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch == nil {
		w.ch = make(chan struct{})
	}
	return w.ch
}

// written wakes the readers waiting on changed.
func (w *opWatch) written() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.ch != nil {
		close(w.ch)
		w.ch = nil
	}
}

// OperationsChanged returns a channel closed when this process next records
// a change of any operation. Take it before reading the operation.
func (s *Kernel) OperationsChanged() <-chan struct{} { return s.opw.changed() }
