package agentapi

// Task kinds of background compression.
const (
	KindCompress           = "backup.compress"
	KindFinalizeCompressed = "backup.finalize-compression"
)

// CompressRequest writes a compressed copy next to each backup file
// (<file>.compressed), keeping the same backing file, with qemu-img convert
// -c -O qcow2 -o compression_type=<library> -m <coroutines> [-r <rate>] -W.
// It refuses to start when the storage has less free space than the
// backup's size times MinFreeFactor.
type CompressRequest struct {
	InStorage
	JobAttempt
	Files         []RestoreFile `json:"files"`
	Library       string        `json:"library"` // zstd or zlib (zlib anyway for qcow2 v2 images)
	Coroutines    int           `json:"coroutines"`
	RateLimitMBps int64         `json:"rate_limit_mbps"` // < 1: no limit
	MinFreeFactor float64       `json:"min_free_factor"`
}

// CompressedFile is one compressed backup file.
type CompressedFile struct {
	Disk             string `json:"disk"`
	Path             string `json:"path"`
	Size             int64  `json:"size"`
	UncompressedSize int64  `json:"uncompressed_size"`
	Hash             string `json:"hash"`
	Library          string `json:"library"`
}

// CompressResult lists what was written (compress) or swapped in (finalize).
type CompressResult struct {
	Files []CompressedFile `json:"files"`
	// RateLimitSkipped says why a requested rate limit was not applied
	// (this qemu-img has no -r); empty when it was, or none was asked.
	RateLimitSkipped string `json:"rate_limit_skipped,omitempty"`
}

// FinalizeCompressionRequest swaps each compressed copy in place of its
// backup file (atomic rename) and hashes the result. Files already swapped
// are only hashed.
type FinalizeCompressionRequest struct {
	InStorage
	JobAttempt
	Files []RestoreFile `json:"files"`
	// Cleanup removes the compressed copies (and partial ones) instead of
	// swapping them in: the compression failed for good. Idempotent.
	Cleanup bool `json:"cleanup,omitempty"`
}
