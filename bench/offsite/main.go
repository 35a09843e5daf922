// Command offsite measures offsite copies' transfers against plain
// minio-go on the same S3 server in the same run: the upload of a 1 GiB
// backup file as knib's agent does it (its recorded hash checked, sealed
// with AES-256-GCM, multipart with Content-MD5, Object Lock retention) against
// minio-go's FPutObject of the same file unencrypted to a plain bucket;
// and its download (opened, authenticated, hashed, fsynced through a
// .part file) against minio-go's GetObject of the plain object into a file
// with an fsync. Throughput ratios are knib / plain (target >= 0.7).
//
//	go run ./bench/offsite [-size 1073741824] [-reps 3] [-s3dir /dev/shm] [-json]
//
// It needs the S3 server scripts/setup-s3.sh installs (versitygw on
// loopback). See bench/README.md.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/knib/knib/bench/internal/knibproc"
	"github.com/knib/knib/bench/internal/report"
	"github.com/knib/knib/internal/agent"
	"github.com/knib/knib/internal/agentapi"
	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/hypervisor/fake"
	"github.com/knib/knib/internal/offsite/seal"
	"github.com/knib/knib/internal/service/kernel"
	"github.com/knib/knib/internal/testbed"
)

// Target is issue 15's bound on both ratios.
const Target = 0.7

// Report is the benchmark's result; -json prints it as is.
type Report struct {
	Machine       string    `json:"machine"`
	When          string    `json:"when"`
	Bytes         int64     `json:"bytes"`
	Reps          int       `json:"reps"`
	PlainUp       []float64 `json:"plain_upload_seconds"`
	KnibUp        []float64 `json:"knib_upload_seconds"`
	PlainDown     []float64 `json:"plain_download_seconds"`
	KnibDown      []float64 `json:"knib_download_seconds"`
	UpRatio       float64   `json:"upload_ratio"`   // knib throughput / plain throughput (medians)
	DownRatio     float64   `json:"download_ratio"` // the same for downloads
	UpWorstRatio  float64   `json:"upload_worst_round_ratio"`
	DownWorstRate float64   `json:"download_worst_round_ratio"`
	LoadAvg       []string  `json:"load_avg"`
}

func main() {
	size := flag.Int64("size", 1<<30, "bytes of the backup file")
	reps := flag.Int("reps", 3, "rounds (each: plain upload, knib upload, plain download, knib download)")
	s3dir := flag.String("s3dir", "/dev/shm", "where the S3 server keeps its data (memory by default: the server's disk is the same for both sides and would only add its noise)")
	asJSON := flag.Bool("json", false, "print the report as JSON")
	flag.Parse()
	knibproc.Main("bench/offsite", 30*time.Minute, *asJSON, func(ctx context.Context) (*Report, error) {
		return run(ctx, *size, *reps, *s3dir)
	}, print)
}

func print(w io.Writer, r *Report) {
	mb := func(secs float64) string { return report.F1(float64(r.Bytes) / 1e6 / secs) }
	fmt.Fprintf(w, "offsite copies: a %s backup file to versitygw on loopback, %d rounds, %s\n", report.HumanSize(r.Bytes), r.Reps, r.Machine)
	fmt.Fprintf(w, "  upload   plain minio-go FPutObject: median %s s (%s MB/s)  %v\n", report.F3(report.Median(r.PlainUp)), mb(report.Median(r.PlainUp)), r.PlainUp)
	fmt.Fprintf(w, "  upload   knib (hash check, seal, multipart, lock): median %s s (%s MB/s)  %v\n", report.F3(report.Median(r.KnibUp)), mb(report.Median(r.KnibUp)), r.KnibUp)
	fmt.Fprintf(w, "  download plain minio-go GetObject + fsync: median %s s (%s MB/s)  %v\n", report.F3(report.Median(r.PlainDown)), mb(report.Median(r.PlainDown)), r.PlainDown)
	fmt.Fprintf(w, "  download knib (open, authenticate, hash, fsync): median %s s (%s MB/s)  %v\n", report.F3(report.Median(r.KnibDown)), mb(report.Median(r.KnibDown)), r.KnibDown)
	fmt.Fprintf(w, "RATIO upload knib/plain throughput: %s (worst round %s), target >= %.1f\n", report.F3(r.UpRatio), report.F3(r.UpWorstRatio), Target)
	fmt.Fprintf(w, "RATIO download knib/plain throughput: %s (worst round %s), target >= %.1f\n", report.F3(r.DownRatio), report.F3(r.DownWorstRate), Target)
	fmt.Fprintf(w, "load average: %v\n", r.LoadAvg)
}

func run(ctx context.Context, size int64, reps int, s3dir string) (*Report, error) {
	r := &Report{Machine: knibproc.Machine(), When: clock.Real{}.Now().UTC().Format(time.RFC3339), Bytes: size, Reps: reps}
	dir, err := os.MkdirTemp("/var/tmp", "knib-bench-offsite-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	s3root, err := os.MkdirTemp(s3dir, "knib-bench-s3-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(s3root)
	gw, stop, err := testbed.LaunchS3(s3root)
	if err != nil {
		return nil, fmt.Errorf("%w (install it with scripts/setup-s3.sh)", err)
	}
	defer stop()
	locked, err := gw.MakeBucket(ctx, "knib-bench", true)
	if err != nil {
		return nil, err
	}
	plainCfg, err := gw.MakeBucket(ctx, "plain-bench", false)
	if err != nil {
		return nil, err
	}
	client, err := gw.NewClient()
	if err != nil {
		return nil, err
	}
	root := filepath.Join(dir, "storage")
	rel := "backups/vm/b1/vda.qcow2"
	file := filepath.Join(root, rel)
	if err := writeRandom(file, size); err != nil {
		return nil, err
	}
	hash, err := agent.HashFile(file) // also brings the file into the page cache
	if err != nil {
		return nil, err
	}
	a := agent.NewLocal(agent.Config{Name: "bench"}, fake.New(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	defer a.Close()
	key, err := seal.NewKey()
	if err != nil {
		return nil, err
	}
	remote := agentapi.Remote{Endpoint: locked.Endpoint, Bucket: locked.Bucket, AccessKey: locked.AccessKey, SecretKey: locked.SecretKey, Key: key.String()}
	var upR, downR []float64
	for i := range reps {
		plainKey := fmt.Sprintf("plain-%d", i)
		salt, err := seal.NewSalt()
		if err != nil {
			return r, err
		}
		objKey := "knib/o/" + key.ObjectName("object", fmt.Sprint(i), rel)
		var version string
		plainUp := func() error {
			_, err := client.FPutObject(ctx, plainCfg.Bucket, plainKey, file, minio.PutObjectOptions{})
			return err
		}
		knibUp := func() error {
			// The agent's task; a new copy (salt and key) each round.
			req := agentapi.OffsitePutRequest{InStorage: agentapi.InStorage{Storage: root}, Remote: remote, LockMode: "COMPLIANCE", LockUntil: clock.Real{}.Now().Add(time.Hour),
				Objects: []agentapi.PutObject{{Path: rel, Key: objKey, Salt: hex.EncodeToString(salt), Hash: hash}}}
			put, err := kernel.Run(ctx, agentapi.Agent(a), agentapi.OffsitePut, req, time.Hour, nil, 0, 100)
			if err == nil {
				version = put.Objects[0].VersionID
			}
			return err
		}
		out := filepath.Join(dir, "plain.out")
		plainDown := func() error { return plainGet(ctx, client, plainCfg.Bucket, plainKey, out) }
		knibDown := func() error {
			get := agentapi.OffsiteGetRequest{InStorage: agentapi.InStorage{Storage: root}, Remote: remote,
				Objects: []agentapi.GetObject{{Key: objKey, VersionID: version, Path: rel, Hash: hash}}}
			_, err := kernel.Run(ctx, agentapi.Agent(a), agentapi.OffsiteGet, get, time.Hour, nil, 0, 100)
			return err
		}
		// Each step starts on a settled machine (the previous step's
		// writes flushed, untimed); the order alternates between rounds.
		timed := func(what string, fn func() error, into *[]float64) error {
			knibproc.Settle(ctx, false)
			t0 := clock.Real{}.Now()
			if err := fn(); err != nil {
				return fmt.Errorf("%s: %w", what, err)
			}
			*into = append(*into, clock.Since(clock.Real{}, t0).Seconds())
			return nil
		}
		ups := []func() error{
			func() error { return timed("plain upload", plainUp, &r.PlainUp) },
			func() error { return timed("knib upload", knibUp, &r.KnibUp) },
		}
		downs := []func() error{
			func() error { return timed("plain download", plainDown, &r.PlainDown) },
			func() error {
				if err := os.Remove(file); err != nil { // the backup file is gone: fetched back
					return err
				}
				return timed("knib download", knibDown, &r.KnibDown)
			},
		}
		if i%2 == 1 {
			ups[0], ups[1] = ups[1], ups[0]
			downs[0], downs[1] = downs[1], downs[0]
		}
		for _, step := range append(ups, downs...) {
			if err := step(); err != nil {
				return r, err
			}
		}
		os.Remove(out)
		upR = append(upR, report.Ratio(r.PlainUp[i], r.KnibUp[i]))
		downR = append(downR, report.Ratio(r.PlainDown[i], r.KnibDown[i]))
		if err := client.RemoveObject(ctx, plainCfg.Bucket, plainKey, minio.RemoveObjectOptions{}); err != nil {
			return r, err
		}
	}
	r.UpRatio = report.Ratio(report.Median(r.PlainUp), report.Median(r.KnibUp))
	r.DownRatio = report.Ratio(report.Median(r.PlainDown), report.Median(r.KnibDown))
	r.UpWorstRatio, r.DownWorstRate = minOf(upR), minOf(downR)
	r.LoadAvg = []string{report.LoadAvg()}
	return r, nil
}

func minOf(v []float64) float64 {
	m := 0.0
	for i, x := range v {
		if i == 0 || x < m {
			m = x
		}
	}
	return m
}

// writeRandom writes size random bytes at path, fsynced.
func writeRandom(path string, size int64) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return err
	}
	return writeSynced(path, func(w io.Writer) error {
		_, err := io.CopyN(w, rand.Reader, size)
		return err
	})
}

// plainGet downloads an object into a file, fsynced.
func plainGet(ctx context.Context, c *minio.Client, bucket, key, path string) error {
	obj, err := c.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return err
	}
	defer obj.Close()
	return writeSynced(path, func(w io.Writer) error {
		_, err := io.Copy(w, obj)
		return err
	})
}

// writeSynced creates path, fills it and fsyncs it.
func writeSynced(path string, fill func(io.Writer) error) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	err = fill(f)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}
