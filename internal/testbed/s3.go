package testbed

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/knib/knib/internal/offsite"
)

// EnvVersityGW names the versitygw binary; without it VersityGWPath.
const EnvVersityGW = "KNIB_VERSITYGW"

// VersityGWPath is where scripts/setup-s3.sh installs the S3 server of the
// offsite tests (versitygw, Apache-2.0; its Object Lock is enforced).
const VersityGWPath = "/var/cache/knib/bin/versitygw"

// S3 is a versitygw serving the posix backend on a loopback port, for one
// test. Its data lives under DataDir: the current version of an object is
// the file DataDir/<bucket>/<key>; older versions are under VersionsDir.
type S3 struct {
	Endpoint, AccessKey, SecretKey string
	DataDir, VersionsDir           string
}

// StartS3 starts a versitygw for the test and stops it at its end. When
// the binary is missing the test skips, or fails under
// KNIB_TEST_REQUIRE_INFRA=1.
func StartS3(t testing.TB) *S3 {
	t.Helper()
	bin := os.Getenv(EnvVersityGW)
	if bin == "" {
		bin = VersityGWPath
	}
	if _, err := os.Stat(bin); err != nil {
		unavailableS3(t, fmt.Sprintf("no S3 server: %v", err))
		return nil
	}
	dir := t.TempDir()
	s := &S3{DataDir: filepath.Join(dir, "data"), VersionsDir: filepath.Join(dir, "versions"), AccessKey: "knibtest", SecretKey: randomHex(t, 16)}
	for _, d := range []string{s.DataDir, s.VersionsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + addr
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "posix", "--versioning-dir", s.VersionsDir, s.DataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(logf.Name())
			t.Fatalf("versitygw does not answer on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return s
}

func unavailableS3(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequireInfra) == "1" {
		t.Fatalf("testbed: infrastructure missing (%s=1): %s", EnvRequireInfra, reason)
	}
	t.Skipf("testbed: infra skip: %s (run scripts/setup-s3.sh; set %s=1 to fail instead)", reason, EnvRequireInfra)
}

func randomHex(t testing.TB, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Client is a minio-go client of the server (for tests and benchmarks).
func (s *S3) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Endpoint[len("http://"):], &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Bucket creates a bucket (with Object Lock, which turns versioning on,
// when lock) and returns how to reach it.
func (s *S3) Bucket(t testing.TB, name string, lock bool) offsite.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := s.Client(t)
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{ObjectLocking: lock}); err != nil {
		t.Fatalf("make bucket %s: %v", name, err)
	}
	if lock {
		if err := c.EnableVersioning(ctx, name); err != nil {
			t.Fatalf("versioning of %s: %v", name, err)
		}
	}
	return offsite.Config{Endpoint: s.Endpoint, Bucket: name, AccessKey: s.AccessKey, SecretKey: s.SecretKey}
}

// Corrupt flips one byte, at off, of the current version of an object, on
// the server's disk (bit rot, or an intruder on the storage server).
func (s *S3) Corrupt(t testing.TB, bucket, key string, off int64) {
	t.Helper()
	p := filepath.Join(s.DataDir, bucket, filepath.FromSlash(key))
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		t.Fatalf("corrupt %s: %v", key, err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatalf("corrupt %s: %v", key, err)
	}
	b[0] ^= 0x01
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatalf("corrupt %s: %v", key, err)
	}
}
