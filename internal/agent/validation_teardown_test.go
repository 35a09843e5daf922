package agent

import (
	"context"
	"testing"
	"time"
)

// A validation of a backup whose previous validation VM is still being
// torn down waits for that teardown, and Close's waitAll waits for every
// teardown; other VMs' teardowns do not hold it.
func TestValidationTeardownsAreWaitedFor(t *testing.T) {
	var td validationTeardowns
	release := make(chan struct{})
	ended := make(chan string, 2)
	td.start("knib-validate-aaaaaaaa", func() { <-release; ended <- "a" })
	ctx := context.Background()
	if err := td.wait(ctx, "knib-validate-bbbbbbbb"); err != nil {
		t.Fatalf("no teardown of that VM, yet: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if err := td.wait(short, "knib-validate-aaaaaaaa"); err == nil {
		t.Fatal("wait returned while the teardown still ran")
	}
	// A second teardown of the same name runs after the first.
	td.start("knib-validate-aaaaaaaa", func() { ended <- "a2" })
	close(release)
	if err := td.wait(ctx, "knib-validate-aaaaaaaa"); err != nil {
		t.Fatal(err)
	}
	td.waitAll()
	if a, b := <-ended, <-ended; a != "a" || b != "a2" {
		t.Fatalf("teardown order %s, %s", a, b)
	}
	if len(td.pending) != 0 {
		t.Fatalf("pending teardowns after all ended: %v", td.pending)
	}
}
