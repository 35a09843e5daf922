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
	"strings"
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
	if _, err := os.Stat(versityGW()); err != nil {
		unavailableS3(t, fmt.Sprintf("no S3 server: %v", err))
		return nil
	}
	s, stop, err := LaunchS3(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return s
}

func versityGW() string {
	if bin := os.Getenv(EnvVersityGW); bin != "" {
		return bin
	}
	return VersityGWPath
}

// LaunchS3 starts a versitygw with its data under dir and waits until it
// answers; stop ends it (benchmarks; tests use StartS3).
func LaunchS3(dir string) (*S3, func(), error) {
	secret := make([]byte, 16)
	if _, err := rand.Read(secret); err != nil {
		return nil, nil, err
	}
	s := &S3{DataDir: filepath.Join(dir, "data"), VersionsDir: filepath.Join(dir, "versions"), AccessKey: "knibtest", SecretKey: hex.EncodeToString(secret)}
	for _, d := range []string{s.DataDir, s.VersionsDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, nil, err
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + addr
	logf, err := os.Create(filepath.Join(dir, "versitygw.log"))
	if err != nil {
		return nil, nil, err
	}
	cmd := exec.Command(versityGW(), "--access", s.AccessKey, "--secret", s.SecretKey, "--port", addr, "posix", "--versioning-dir", s.VersionsDir, s.DataDir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		logf.Close()
		return nil, nil, fmt.Errorf("start versitygw: %w", err)
	}
	stop := func() {
		cmd.Process.Kill()
		cmd.Wait()
		logf.Close()
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, stop, nil
		}
		if time.Now().After(deadline) {
			stop()
			log, _ := os.ReadFile(logf.Name())
			return nil, nil, fmt.Errorf("versitygw does not answer on %s: %v\n%s", addr, err, log)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func unavailableS3(t testing.TB, reason string) {
	t.Helper()
	if os.Getenv(EnvRequireInfra) == "1" {
		t.Fatalf("testbed: infrastructure missing (%s=1): %s", EnvRequireInfra, reason)
	}
	t.Skipf("testbed: infra skip: %s (run scripts/setup-s3.sh; set %s=1 to fail instead)", reason, EnvRequireInfra)
}

// NewClient is a minio-go client of the server.
func (s *S3) NewClient() (*minio.Client, error) {
	return minio.New(strings.TrimPrefix(s.Endpoint, "http://"), &minio.Options{Creds: credentials.NewStaticV4(s.AccessKey, s.SecretKey, "")})
}

// Client is NewClient failing the test on error.
func (s *S3) Client(t testing.TB) *minio.Client {
	t.Helper()
	c, err := s.NewClient()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// MakeBucket creates a bucket (with Object Lock and versioning when lock)
// and returns how to reach it.
func (s *S3) MakeBucket(ctx context.Context, name string, lock bool) (offsite.Config, error) {
	c, err := s.NewClient()
	if err != nil {
		return offsite.Config{}, err
	}
	if err := c.MakeBucket(ctx, name, minio.MakeBucketOptions{ObjectLocking: lock}); err != nil {
		return offsite.Config{}, fmt.Errorf("make bucket %s: %w", name, err)
	}
	if lock {
		if err := c.EnableVersioning(ctx, name); err != nil {
			return offsite.Config{}, fmt.Errorf("versioning of %s: %w", name, err)
		}
	}
	return offsite.Config{Endpoint: s.Endpoint, Bucket: name, AccessKey: s.AccessKey, SecretKey: s.SecretKey}, nil
}

// Bucket is MakeBucket failing the test on error.
func (s *S3) Bucket(t testing.TB, name string, lock bool) offsite.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg, err := s.MakeBucket(ctx, name, lock)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
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
