package kernel

import "time"

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
