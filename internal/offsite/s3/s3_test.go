package s3_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/offsite"
	"github.com/knib/knib/internal/offsite/offsitetest"
	"github.com/knib/knib/internal/offsite/s3"
	"github.com/knib/knib/internal/testbed"
)

// The adapter keeps offsite.Bucket's contract on a real S3 server
// (versitygw, whose Object Lock is enforced).
func TestConformanceOnVersityGW(t *testing.T) {
	gw := testbed.StartS3(t)
	n := 0
	offsitetest.Run(t, offsitetest.Suite{
		Open: func(t *testing.T) offsite.Bucket {
			n++
			b, err := s3.OpenWith(gw.Bucket(t, fmt.Sprintf("conf-%d", n), true), s3.Options{PartSize: 5 << 20})
			if err != nil {
				t.Fatal(err)
			}
			return b
		},
		PartSize: 5 << 20, // S3's smallest part
		Now:      clock.Real{}.Now,
		Hide: func(t *testing.T, b offsite.Bucket, key string) {
			c := gw.Client(t)
			if err := c.RemoveObject(context.Background(), fmt.Sprintf("conf-%d", n), key, minio.RemoveObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		},
	})
}

// A bucket without Object Lock is reported as such by the lock check.
func TestLockCheckWithoutLock(t *testing.T) {
	gw := testbed.StartS3(t)
	b, err := s3.Open(gw.Bucket(t, "plain", false))
	if err != nil {
		t.Fatal(err)
	}
	res, err := offsite.CheckLocks(context.Background(), b, offsite.Compliance, clock.Real{}.Now(), time.Minute)
	if err != nil || res.Enforced || res.Verdict != "object lock is not enabled on the bucket" {
		t.Fatalf("lock check: %+v %v", res, err)
	}
}
