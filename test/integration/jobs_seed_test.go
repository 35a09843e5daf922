package integration

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

// jobsOf lists a backup's jobs of one type, finished ones included.
func (s *Server) jobsOf(backupID, typ string) []job {
	s.t.Helper()
	var all, out []job
	s.MustJSON(&all, "job", "list", "--backup", backupID, "--all")
	for _, j := range all {
		if j.Type == typ {
			out = append(out, j)
		}
	}
	return out
}

// peakOverlap is the largest number of jobs whose [started, ended]
// intervals overlap at one moment, from their recorded times.
func peakOverlap(t *testing.T, list []job) int {
	t.Helper()
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, j := range list {
		if j.Started == nil || j.Ended == nil {
			t.Fatalf("job without its times: %+v", j)
		}
		edges = append(edges, edge{*j.Started, 1}, edge{*j.Ended, -1})
	}
	sort.Slice(edges, func(a, b int) bool {
		if edges[a].at.Equal(edges[b].at) {
			return edges[a].d < edges[b].d
		}
		return edges[a].at.Before(edges[b].at)
	})
	cur, peak := 0, 0
	for _, e := range edges {
		cur += e.d
		peak = max(peak, cur)
	}
	return peak
}

// TestCompressionJobsSeed is the seed's configuration rows for compression
// jobs on a real guest:
//
//   - backup.compression.max.concurrent.operations.per.host -1 (row 2):
//     no limit; six compressions of one host run at once, more than the
//     default limit of 5 would let through;
//   - a compression that fails, is retried once after
//     backup.compression.retry.interval and fails again (rows 3 and 4): the
//     job ends Failed after max.job.retries + 1 attempts, the second attempt
//     started no earlier than the first one's end plus the interval (as
//     recorded by the jobs), the backup is CompressionError, the compressed
//     copy the first attempt left is removed, and the backup files are
//     those that were written.
//
// The failure is real: a rate limit of 1 MB/s makes the compression of the
// second disk (24 MiB of new data) outlive backup.compression.timeout,
// while the first disk's few changed clusters are compressed in time.
func TestCompressionJobsSeed(t *testing.T) {
	ctx := context.Background()
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-sjzip", DiskSizes: []int64{32 << 20, 32 << 20}, Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	var hosts []struct {
		Name string `json:"name"`
	}
	s.MustJSON(&hosts, "host", "list")
	if len(hosts) != 1 {
		t.Fatalf("hosts: %+v", hosts)
	}
	host := hosts[0].Name
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "sjzip", "--compress")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// Row 2: no per-host limit. The jobs wait while the task is off, and the
	// next scheduler round starts every one of them.
	s.CLI("settings", "set", "--host", host, "--", "backup.compression.max.concurrent.operations.per.host", "-1")
	s.CLI("settings", "set", "backup.compression.task.enabled", "false")
	var ids []string
	for i := 0; i < 6; i++ {
		if err := dom.WriteDisk(ctx, 1, byte(0x21+i), int64(i)<<20, 1<<20); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, s.backup(dom.Name).ID)
	}
	s.CLI("settings", "set", "backup.compression.task.enabled", "true")
	var started []job
	for _, id := range ids {
		waitCompression(t, s, dom.Name, id, "Compressed")
		list := s.jobsOf(id, "StartCompression")
		if len(list) != 1 || list[0].State != "Succeeded" || list[0].Attempts != 1 {
			t.Fatalf("backup %s: compression jobs %+v", id, list)
		}
		started = append(started, list[0])
	}
	if peak := peakOverlap(t, started); peak != len(ids) {
		t.Fatalf("%d of %d compressions of one host ran at once with no per-host limit: %+v", peak, len(ids), started)
	}

	// Rows 3 and 4: one retry, a minute later, then the final failure.
	for key, val := range map[string]string{"backup.compression.rate.limit": "1", "backup.compression.timeout": "5",
		"backup.compression.max.job.retries": "1", "backup.compression.retry.interval": "1"} {
		s.CLI("settings", "set", key, val, "--host", host)
	}
	if err := dom.WriteDisk(ctx, 1, 0x5a, 6<<20, 24<<20); err != nil {
		t.Fatal(err)
	}
	b := s.backup(dom.Name)
	if b.Type != "incremental" || len(b.Files) != 2 {
		t.Fatalf("backup %+v", b)
	}
	var first job
	deadline := time.Now().Add(time.Minute)
	for {
		if list := s.jobsOf(b.ID, "StartCompression"); len(list) == 1 && list[0].Attempts == 1 && list[0].State == "Queued" && list[0].LastError != "" {
			first = list[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the first attempt did not fail: %+v\n%s", s.jobsOf(b.ID, "StartCompression"), s.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(first.LastError, "timed out after 5s") || first.Ended == nil || first.Scheduled.Before(first.Ended.Add(time.Minute)) {
		t.Fatalf("after the first failure: %+v", first)
	}
	var vda, vdb string
	for _, f := range b.Files {
		switch f.Disk {
		case "vda":
			vda = s.storage(f.Path)
		case "vdb":
			vdb = s.storage(f.Path)
		}
	}
	// The first disk's compressed copy is left by the failed attempt (so
	// that the check after the final failure means something).
	if _, err := os.Stat(vda + ".compressed"); err != nil {
		t.Fatalf("the first attempt should have compressed vda before vdb timed out: %v", err)
	}

	var final job
	deadline = time.Now().Add(3 * time.Minute)
	for {
		if list := s.jobsOf(b.ID, "StartCompression"); len(list) == 1 && list[0].State == "Failed" {
			final = list[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the retry did not fail for good: %+v\n%s", s.jobsOf(b.ID, "StartCompression"), s.Log())
		}
		time.Sleep(time.Second)
	}
	if final.Attempts != 2 || !strings.Contains(final.LastError, "timed out after 5s") || final.Started == nil {
		t.Fatalf("after the final failure: %+v", final)
	}
	if earliest := first.Ended.Add(time.Minute); final.Started.Before(earliest) {
		t.Fatalf("the retry started at %s, before the first attempt's end %s plus the retry interval of 1 minute", final.Started, first.Ended)
	}
	waitCompression(t, s, dom.Name, b.ID, "CompressionError")
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(vdb), "*.compressed*")); len(left) != 0 {
		t.Fatalf("compressed copies left after the final failure: %v", left)
	}
	got := s.compressionOf(dom.Name)[b.ID]
	for _, f := range got.Files {
		file := s.storage(f.Path)
		run(t, "qemu-img", "check", "-q", file)
		if h := hashFile(t, file); h != f.Hash {
			t.Fatalf("backup file %s: hash %s, recorded %s", f.Path, h, f.Hash)
		}
	}
	if vda == "" || vdb == "" || len(got.Files) != 2 {
		t.Fatalf("backup files: %+v", got.Files)
	}
}
