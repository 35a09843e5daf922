// Package s3 implements offsite.Bucket on an S3-compatible server with
// github.com/minio/minio-go/v7.
package s3

import (
	"errors"

	"github.com/knib/knib/internal/offsite"
)

// Open returns a Bucket for cfg. (Placeholder until the adapter lands.)
func Open(cfg offsite.Config) (offsite.Bucket, error) {
	return nil, errors.New("s3: not built yet")
}
