package integration

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/testbed"
)

type job struct {
	ID        string     `json:"id"`
	Type      string     `json:"type"`
	BackupID  string     `json:"backup_id"`
	State     string     `json:"state"`
	Attempts  int        `json:"attempts"`
	Scheduled time.Time  `json:"scheduled"`
	Started   *time.Time `json:"started"`
	Ended     *time.Time `json:"ended"`
	LastError string     `json:"last_error"`
}

type backupStatus struct {
	ID                string `json:"id"`
	Size              int64  `json:"size"`
	CompressionStatus string `json:"compression_status"`
	UncompressedSize  int64  `json:"uncompressed_size"`
	Files             []struct {
		Path string `json:"path"`
		Hash string `json:"hash"`
	} `json:"files"`
}

func contentHash(t *testing.T, file string) string {
	t.Helper()
	raw := flatten(t, file)
	f, err := os.Open(raw)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	os.Remove(raw)
	return hex.EncodeToString(h.Sum(nil))
}

func (s *Server) compressionOf(vm string) map[string]backupStatus {
	var list []backupStatus
	s.MustJSON(&list, "backup", "list", "--vm", vm)
	out := map[string]backupStatus{}
	for _, b := range list {
		out[b.ID] = b
	}
	return out
}

// TestCompression is the seed's "Compression Tests": full and incremental
// backups compressed by background jobs, several of one VM compressed in
// parallel within the per-host limit, a restore while compressions run, and
// every backup's content identical after compression.
func TestCompression(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-zip", DiskSizes: []int64{96 << 20}, Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery, s.LogLevel = "1s", "debug"
	s.Restart()
	s.CLI("settings", "set", "backup.compression.coroutines", "3")
	// 2 MB/s keeps each compression running for a few seconds, so that they overlap.
	s.CLI("settings", "set", "backup.compression.rate.limit", "2")
	s.CLI("settings", "set", "backup.compression.max.concurrent.operations.per.host", "2")
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "zip", "--compress", "--backup-chain-size", "0")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	want := map[string]string{}
	var ids []string
	for i := 0; i < 10; i++ {
		guest(t, dom, "yes knib-compression-"+strings.Repeat("x", i)+" | head -c 4000000 > /data/f"+string(rune('0'+i))+" && sync")
		b := s.backup(dom.Name)
		want[b.ID] = contentHash(t, s.storage(b.Files[0].Path))
		ids = append(ids, b.ID)
	}
	// A restore while compressions run.
	removeVM(t, "knib-t-zip-r")
	t.Cleanup(func() { removeVM(t, "knib-t-zip-r") })
	var res struct{ Disks []struct{ Verified string } }
	s.MustJSON(&res, "backup", "create-vm", ids[3], "--name", "knib-t-zip-r")
	if len(res.Disks) != 1 || !verifiedCopy(res.Disks[0].Verified) {
		t.Fatalf("restore during compression: %+v", res)
	}
	removeVM(t, "knib-t-zip-r")

	deadline := time.Now().Add(4 * time.Minute)
	for {
		all := s.compressionOf(dom.Name)
		done := 0
		for _, id := range ids {
			switch all[id].CompressionStatus {
			case "Compressed":
				done++
			case "CompressionError":
				t.Fatalf("backup %s: compression failed\n%s", id, s.Log())
			}
		}
		if done == len(ids) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("compressed %d of %d after 4 minutes", done, len(ids))
		}
		time.Sleep(time.Second)
	}
	all := s.compressionOf(dom.Name)
	for _, id := range ids {
		b := all[id]
		file := s.storage(b.Files[0].Path)
		if got := contentHash(t, file); got != want[id] {
			t.Fatalf("backup %s: content changed by compression", id)
		}
		if got := hashFile(t, file); got != b.Files[0].Hash {
			t.Fatalf("backup %s: recorded hash %s is not the compressed file's %s", id, b.Files[0].Hash, got)
		}
		var info struct {
			FormatSpecific struct {
				Data struct {
					CompressionType string `json:"compression-type"`
				} `json:"data"`
			} `json:"format-specific"`
		}
		json.Unmarshal([]byte(run(t, "qemu-img", "info", "-U", "--output=json", file)), &info)
		if info.FormatSpecific.Data.CompressionType != "zstd" {
			t.Fatalf("backup %s: compression type %q", id, info.FormatSpecific.Data.CompressionType)
		}
		if b.UncompressedSize <= b.Size {
			t.Fatalf("backup %s: %d bytes compressed from %d", id, b.Size, b.UncompressedSize)
		}
	}
	// Within the per-host limit of 2 at every moment.
	var jobs []job
	s.MustJSON(&jobs, "job", "list", "--all", "--type", "StartCompression")
	if len(jobs) != len(ids) {
		t.Fatalf("%d compression jobs for %d backups", len(jobs), len(ids))
	}
	type edge struct {
		at time.Time
		d  int
	}
	var edges []edge
	for _, j := range jobs {
		if j.State != "Succeeded" || j.Started == nil || j.Ended == nil {
			t.Fatalf("job %+v", j)
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
	if peak != 2 {
		t.Fatalf("%d compressions ran at once; want them in parallel up to the per-host limit of 2", peak)
	}
	t.Logf("at most %d compressions ran at once", peak)
	// The settings reached qemu-img.
	log := s.Log()
	if !strings.Contains(log, "-m 3") || !strings.Contains(log, "-r 2097152") || !strings.Contains(log, "compression_type=zstd") {
		t.Fatalf("coroutines, rate limit and library must reach qemu-img:\n%s", grepLines(log, "convert"))
	}
	// Compressed chains restore.
	s.checkRestorable(s.backups(dom.Name))
}

// TestCompressionSettings is the seed's "Configuration Tests" for
// compression: the task switch, the minimum free storage, retries and the
// retry interval.
func TestCompressionSettings(t *testing.T) {
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-zipcfg", Start: true})
	s := StartServer(t, "")
	s.Stop()
	s.JobsEvery = "1s"
	s.Restart()
	var off struct{ ID string }
	s.MustJSON(&off, "offering", "create", "--name", "zipcfg", "--compress", "--compression-library", "zlib")
	s.CLI("host", "refresh")
	s.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// Task disabled: the job waits; enabled again: it runs.
	s.CLI("settings", "set", "backup.compression.task.enabled", "false")
	b1 := s.backup(dom.Name)
	time.Sleep(3 * time.Second)
	var jobs []job
	s.MustJSON(&jobs, "job", "list", "--backup", b1.ID)
	if len(jobs) != 1 || jobs[0].State != "Queued" {
		t.Fatalf("with the task disabled: %+v", jobs)
	}
	s.CLI("settings", "set", "backup.compression.task.enabled", "true")
	waitCompression(t, s, dom.Name, b1.ID, "Compressed")

	// Not enough free storage: the job fails with that reason; one retry,
	// scheduled after the retry interval.
	s.CLI("settings", "set", "backup.compression.minimum.free.storage", "1000000000")
	s.CLI("settings", "set", "backup.compression.max.job.retries", "1")
	s.CLI("settings", "set", "backup.compression.retry.interval", "1")
	b2 := s.backup(dom.Name)
	var j job
	deadline := time.Now().Add(time.Minute)
	for {
		s.MustJSON(&jobs, "job", "list", "--backup", b2.ID, "--all")
		if len(jobs) == 1 && jobs[0].LastError != "" {
			j = jobs[0]
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compression did not fail: %+v", jobs)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if !strings.Contains(j.LastError, "free space") || j.State != "Queued" || j.Attempts != 1 || j.Scheduled.Before(time.Now().Add(30*time.Second)) {
		t.Fatalf("after the first failure: %+v", j)
	}
	s.MustJSON(&jobs, "job", "list", "--scheduled")
	if len(jobs) != 1 || jobs[0].ID != j.ID {
		t.Fatalf("the retry must be listed as scheduled: %+v", jobs)
	}
	// With no retries left, a failure is final and the backup says so.
	s.CLI("settings", "set", "backup.compression.max.job.retries", "0")
	b3 := s.backup(dom.Name)
	waitCompression(t, s, dom.Name, b3.ID, "CompressionError")
	var info struct {
		FormatSpecific struct {
			Data struct {
				CompressionType string `json:"compression-type"`
			} `json:"data"`
		} `json:"format-specific"`
	}
	json.Unmarshal([]byte(run(t, "qemu-img", "info", "-U", "--output=json", s.storage(b1.Files[0].Path))), &info)
	if info.FormatSpecific.Data.CompressionType != "zlib" {
		t.Fatalf("the offering's library: %q", info.FormatSpecific.Data.CompressionType)
	}
}

func waitCompression(t *testing.T, s *Server, vm, id, want string) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		b := s.compressionOf(vm)[id]
		if b.CompressionStatus == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("backup %s: compression %s, want %s\n%s", id, b.CompressionStatus, want, s.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
