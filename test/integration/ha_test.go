package integration

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/jobs"
	"github.com/knib/knib/internal/store"
	"github.com/knib/knib/internal/store/sqlstore"
	"github.com/knib/knib/internal/testbed"
)

// startHAServer starts a server on the shared PostgreSQL database, without
// an in-process agent, with an agent listener, a job round every second and
// a 6 s lease (jobs, operations and VM locks).
func startHAServer(t *testing.T, pg string, env ...string) *Server {
	t.Helper()
	s := &Server{t: t, DataDir: dataDirFor(t), Listen: freePort(t), NoLocalAgent: true, Database: pg,
		JobsEvery: "1s", JobLease: "6s", ReconcileEvery: "5s", Env: env}
	s.URL = "http://" + s.Listen
	s.AgentListen = freePort(t)
	s.Args = []string{"--libvirt-uri", "", "--agent-listen", s.AgentListen, "--agent-heartbeat", "1s", "--agent-failures", "2"}
	s.start()
	t.Cleanup(s.Stop)
	return s
}

var jobDoneRE = regexp.MustCompile(`msg="job done" job=(\S+)`)

// jobsDone counts the "job done" lines per job id in server logs.
func jobsDone(logs ...string) map[string]int {
	out := map[string]int{}
	for _, l := range logs {
		for _, m := range jobDoneRE.FindAllStringSubmatch(l, -1) {
			out[m[1]]++
		}
	}
	return out
}

// TestTwoServersBurst: two `knib server` processes on one PostgreSQL
// database and one remote agent (joined through server 1, dialled by both).
// 50 backups of a VM whose offering compresses make a burst of 50 queued
// StartCompression jobs while the job switch is off (each is followed by a
// FinalizeCompression: 100 jobs in all); the switch goes on, both servers run jobs, and server 1 is killed
// with SIGKILL while it runs some jobs and a backup operation. Server 2 then
// finishes every job, each exactly once, with consistent compressed files;
// once server 1's lease ran out its operation is Failed with a reason and
// its VM lock is gone; the last burst backup restores with the guest's
// files intact.
func TestTwoServersBurst(t *testing.T) {
	testbed.Require(t)
	const burst = 50 // backups: 50 queued jobs, then a finalize each
	pg := testbed.PostgresDB(t)
	dom := testbed.NewDomain(t, testbed.DomainOptions{Name: "knib-t-ha", DiskSizes: []int64{192 << 20}, Start: true})
	ctx := context.Background()
	// Server 1 dies by SIGKILL in the middle of its next backup (after the
	// deltas, before the commit); every burst backup goes through server 2.
	s1 := startHAServer(t, pg, "KNIB_CRASH_AT=backup.before-commit")
	db, err := sqlstore.OpenExisting(ctx, pg) // the test's own view of the catalogue
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s2 := startHAServer(t, pg)
	tok := s1.joinToken("default")
	ag := s1.NewAgent(t, "knib-ha-a")
	ag.Start(tok)
	s1.WaitAgentState(ag.Name, "Connected", 2*time.Minute, ag)
	// Server 2 finds the agent's identity in the shared catalogue and
	// brings it into service too.
	connected := regexp.MustCompile(`msg="agent connected" host=` + ag.Name)
	deadline := time.Now().Add(2 * time.Minute)
	for !connected.MatchString(s2.Log()) {
		if time.Now().After(deadline) {
			t.Fatalf("server 2 did not connect the agent:\n%s", s2.Log())
		}
		time.Sleep(200 * time.Millisecond)
	}

	for k, v := range map[string]string{
		"backup.compression.task.enabled":                       "false",
		"backup.compression.max.concurrent.operations.per.host": "3",
		"backup.compression.max.job.retries":                    "3",
		// 1 MB/s: each compression of 2 MB runs at least two seconds, so
		// that some run when server 1 dies.
		"backup.compression.rate.limit": "1",
	} {
		s2.CLI("settings", "set", k, v)
	}
	var off struct{ ID string }
	s1.MustJSON(&off, "offering", "create", "--name", "ha", "--compress", "--backup-chain-size", "0")
	s1.CLI("host", "refresh")
	s1.CLI("vm", "assign", dom.Name, "--offering", off.ID)

	// The burst: backups, each after a write.
	var ids []string
	for i := 1; i <= burst; i++ {
		guest(t, dom, fmt.Sprintf("yes ha-%d | head -c 2000000 > /data/f%d && sync", i, i))
		ids = append(ids, s2.backup(dom.Name).ID)
	}
	sums := guest(t, dom, "sha256sum /data/f*")
	var queued []job
	s2.MustJSON(&queued, "job", "list", "--all")
	if len(queued) != burst {
		t.Fatalf("%d jobs queued for %d backups, want one StartCompression each: %+v", len(queued), burst, queued)
	}
	for _, j := range queued {
		if j.State != "Queued" || j.Type != "StartCompression" {
			t.Fatalf("with the switch off: %+v", j)
		}
	}

	// Switch on with server 2 stopped, so that server 1 gets the job slots
	// first: a server that ends a job starts its successor at once (the
	// scheduler wakes on its own jobs' ends), so the server that takes the
	// slots first keeps them. Server 2 comes back while server 1 runs its
	// jobs. Kill server 1 once it finished a job and has just started
	// another.
	s2.Stop()
	s2Stopped := true
	s1.CLI("settings", "set", "backup.compression.task.enabled", "true")
	mine := fmt.Sprintf("/%d/", s1.cmd.Process.Pid)
	deadline = time.Now().Add(3 * time.Minute)
	for {
		running, err := db.Jobs(ctx, store.JobFilter{Executing: true})
		if err != nil {
			t.Fatal(err)
		}
		busy := 0
		for _, j := range running {
			if strings.Contains(j.LeaseOwner, mine) && time.Since(j.Started) < time.Second {
				busy++
			}
		}
		if busy > 0 && s2Stopped {
			s2.start()
			s2Stopped = false
		}
		if busy > 0 && len(jobsDone(s1.Log())) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server 1 never ran jobs (done %d):\n%s", len(jobsDone(s1.Log())), s1.Log())
		}
		time.Sleep(100 * time.Millisecond)
	}
	// A backup through server 1: it holds the VM's lock and kills server 1
	// (SIGKILL at its crash point) with the deltas made and the backup
	// recorded BackingUp, while server 1's jobs run.
	var op struct{ ID, State string }
	s1.MustJSON(&op, "backup", "create", dom.Name, "--async")
	if err := s1.Wait(2 * time.Minute); err != nil {
		t.Fatalf("server 1 did not reach its crash point: %v\n%s", err, s1.Log())
	}
	if !strings.Contains(s1.Log(), "crash point backup.before-commit reached") {
		t.Fatalf("server 1 exited, but not at its crash point:\n%s", s1.Log())
	}
	doneByS1 := jobsDone(s1.Log())
	t.Logf("server 1 killed after %d jobs", len(doneByS1))

	// Server 2 finishes every job: the 50 of the burst and their finalizes.
	var all []job
	deadline = time.Now().Add(8 * time.Minute)
	for {
		s2.MustJSON(&all, "job", "list", "--all")
		ok := len(all) == 2*burst
		for _, j := range all {
			if j.State == "Failed" {
				t.Fatalf("job failed: %+v\n%s", j, s2.Log())
			}
			ok = ok && j.State == "Succeeded"
		}
		if ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 8 minutes: %+v\n%s", all, s2.Log())
		}
		time.Sleep(time.Second)
	}
	// Each job completed exactly once, across both servers' logs; some on
	// server 1 before it died, the rest on server 2, and server 1's running
	// jobs were taken over by server 2.
	done := jobsDone(s1.Log(), s2.Log())
	perBackup := map[string]map[string]int{}
	for _, j := range all {
		if done[j.ID] != 1 {
			t.Fatalf("job %s (%s of %s) completed %d times", j.ID, j.Type, j.BackupID, done[j.ID])
		}
		if perBackup[j.BackupID] == nil {
			perBackup[j.BackupID] = map[string]int{}
		}
		perBackup[j.BackupID][j.Type]++
	}
	for _, id := range ids {
		if perBackup[id]["StartCompression"] != 1 || perBackup[id]["FinalizeCompression"] != 1 {
			t.Fatalf("backup %s: jobs %v, want one of each", id, perBackup[id])
		}
	}
	if len(doneByS1) == 0 || len(doneByS1) == len(all) {
		t.Fatalf("server 1 completed %d of %d jobs; want some", len(doneByS1), len(all))
	}
	if !strings.Contains(s2.Log(), "lost job reaped") {
		t.Fatalf("server 2 did not take over server 1's running jobs:\n%s", s2.Log())
	}

	// Compressed files: recorded hash and size, qemu-img check clean.
	backups := s2.compressionOf(dom.Name)
	for _, id := range ids {
		b := backups[id]
		if b.CompressionStatus != "Compressed" || len(b.Files) != 1 || b.Size <= 0 {
			t.Fatalf("backup %s: %+v", id, b)
		}
		file := s1.storage(b.Files[0].Path)
		if got := hashFile(t, file); got != b.Files[0].Hash {
			t.Fatalf("backup %s: recorded hash %s, file %s", id, b.Files[0].Hash, got)
		}
		if sz := fileSize(t, file); sz != b.Size {
			t.Fatalf("backup %s: recorded size %d, file %d", id, b.Size, sz)
		}
		run(t, "qemu-img", "check", "-U", file)
	}

	// Server 1's operation and lock do not outlive its lease.
	deadline = time.Now().Add(time.Minute)
	for {
		var got struct{ State, Error string }
		s2.MustJSON(&got, "operation", "show", op.ID)
		locks, err := db.VMLocks(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if got.State == "Failed" && strings.Contains(got.Error, "interrupted") && len(locks) == 0 {
			break
		}
		if got.State == "Succeeded" {
			t.Fatalf("server 1's operation succeeded after server 1 was killed")
		}
		if time.Now().After(deadline) {
			t.Fatalf("server 1's operation %+v, locks %+v:\n%s", got, locks, s2.Log())
		}
		time.Sleep(500 * time.Millisecond)
	}
	ops, err := db.ListOperations(ctx, store.OperationFilter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range ops {
		if strings.Contains(o.Owner, mine) {
			t.Fatalf("an operation of server 1 is still %s: %+v", o.State, o)
		}
	}
	// The interrupted backup is reconciled by server 2: Error, its chain
	// ended (no delta left on the VM's disks), the VM in service.
	deadline = time.Now().Add(2 * time.Minute)
	for {
		list, err := db.ListBackups(ctx, store.BackupFilter{VMID: dom.UUID})
		if err != nil {
			t.Fatal(err)
		}
		states := map[domain.BackupStatus]int{}
		for _, b := range list {
			states[b.Status]++
		}
		v := s2.vmDisks(dom.Name)
		if states[domain.BackupError] == 1 && states[domain.BackupBackingUp] == 0 && v.State == "Running" && len(v.deltas()) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the interrupted backup is not reconciled: backups %v, vm %+v\n%s", states, v, s2.Log())
		}
		time.Sleep(time.Second)
	}

	// The last burst backup restores, through server 2, with every file.
	if err := dom.Destroy(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	s2.CLI("backup", "restore", ids[len(ids)-1])
	if err := dom.Start(ctxT(t)); err != nil {
		t.Fatal(err)
	}
	if got := guest(t, dom, "sha256sum /data/f*"); got != sums {
		t.Fatalf("after the restore:\n%s\nwant:\n%s", got, sums)
	}
	// Nothing of the burst failed afterwards either.
	for _, j := range mustJobs(t, db) {
		if j.State == jobs.Failed {
			t.Fatalf("job failed: %+v", j)
		}
	}
}

func mustJobs(t *testing.T, db *sqlstore.DB) []jobs.Job {
	t.Helper()
	list, err := db.Jobs(context.Background(), store.JobFilter{All: true})
	if err != nil {
		t.Fatal(err)
	}
	return list
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}
