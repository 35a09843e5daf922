package kernel

import "time"

// Observer is told what this process did, for its metrics: a backup's
// phases, a job attempt's end and an operation's end. Its methods must be
// cheap and never block; the kernel's default observer does nothing.
type Observer interface {
	// BackupPhase is one phase of a backup (snapshot, copy, fsync, merge,
	// freeze) and how long it took.
	BackupPhase(phase string, d time.Duration)
	// JobAttempt is the end of a job attempt: the job's type, its outcome
	// (succeeded, failed, retry, deferred) and how long the attempt ran.
	JobAttempt(jobType, outcome string, d time.Duration)
	// OperationDone is the end of an operation: its kind and result
	// (succeeded, failed).
	OperationDone(kind, result string)
}

type noObserver struct{}

func (noObserver) BackupPhase(string, time.Duration)        {}
func (noObserver) JobAttempt(string, string, time.Duration) {}
func (noObserver) OperationDone(string, string)             {}

// SetObserver sets the observer; call it before the server starts work.
func (s *Kernel) SetObserver(o Observer) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.obs = o
}

// Observe returns the observer (never nil).
func (s *Kernel) Observe() Observer {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.obs == nil {
		return noObserver{}
	}
	return s.obs
}
