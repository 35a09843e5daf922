package offsitetest

import (
	"testing"
	"time"

	"github.com/knib/knib/internal/clock"
	"github.com/knib/knib/internal/offsite"
)

func TestMemConformance(t *testing.T) {
	clk := clock.NewFake(time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC))
	Run(t, Suite{
		Open:     func(t *testing.T) offsite.Bucket { return &Mem{Now: clk.Now, PartSize: 1 << 10} },
		PartSize: 1 << 10,
		Now:      clk.Now,
		Hide:     func(t *testing.T, b offsite.Bucket, key string) { b.(*Mem).Hide(key) },
	})
}
