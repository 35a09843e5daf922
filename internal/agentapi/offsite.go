package agentapi

import "time"

// Task kinds of offsite copies. Both work in the request's Storage root and
// talk to the request's remote directly from the host.
const (
	// KindOffsitePut seals backup files and uploads them (knib's copy jobs).
	KindOffsitePut = "offsite.put"
	// KindOffsiteGet downloads sealed objects, opens them and writes the
	// backup files back into the storage (restore --from, remote import).
	KindOffsiteGet = "offsite.get"
)

// Remote is how a host reaches a remote and opens what it holds. It
// carries secrets (the secret key and the remote's key): the agent never
// logs it and never returns it.
type Remote struct {
	Endpoint  string `json:"endpoint"`
	Bucket    string `json:"bucket"`
	Region    string `json:"region,omitempty"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	// Key is the remote's sealing key, in seal.Key's text form.
	Key string `json:"key"`
	// BandwidthBps limits the bytes per second of this task (< 1: none).
	BandwidthBps int64 `json:"bandwidth_bps,omitempty"`
}

// OffsitePutRequest seals each file and uploads it under its key, with the
// lock when LockUntil is set. Idempotent and resumable: an object already
// in the bucket with the size the sealed file has is not uploaded again
// (its version is reported), and an unfinished multipart upload of a key is
// resumed (the sealed bytes are the same on every attempt: they derive from
// the file, the key and the object's salt). Each file is hashed while it is
// read; a file whose hash differs from the recorded one fails the task and
// nothing of it is completed in the bucket.
type OffsitePutRequest struct {
	InStorage
	JobAttempt
	Remote  Remote      `json:"remote"`
	Objects []PutObject `json:"objects"`
	// Extras, when Dir is set, uploads every other regular file under that
	// backup directory (domain.xml, manifest.json, boot files; not
	// screenshots or partial files) too.
	Extras Extras `json:"extras,omitzero"`
	// LockMode and LockUntil: the retention of the new versions (none
	// when LockUntil is zero).
	LockMode  string    `json:"lock_mode,omitempty"`
	LockUntil time.Time `json:"lock_until,omitzero"`
}

// PutObject is one backup file to upload.
type PutObject struct {
	Path string `json:"path"` // relative to the storage root
	Key  string `json:"key"`  // the object's key in the bucket
	// Salt (hex, 32 bytes) makes the sealed bytes of this copy of the file
	// its own; the catalogue records it before the first attempt.
	Salt string `json:"salt"`
	Hash string `json:"hash"` // recorded "xxh3-128:<hex>" ("" to skip the check)
}

// Extras names the other files of a backup directory to upload: each
// under the key ObjectPrefix + seal.Key.ObjectName("object", Copy, path)
// (path relative to the storage root), sealed with Salt.
type Extras struct {
	Dir          string `json:"dir"`
	Copy         string `json:"copy"`
	Salt         string `json:"salt"`
	ObjectPrefix string `json:"object_prefix"`
}

// OffsitePutResult lists the objects as they are in the bucket.
type OffsitePutResult struct {
	Objects []PutObjectResult `json:"objects"`
}

// PutObjectResult is one uploaded (or already present) object.
type PutObjectResult struct {
	Path      string `json:"path"`
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	Size      int64  `json:"size"`       // sealed bytes in the bucket
	PlainSize int64  `json:"plain_size"` // the file's bytes
	ETag      string `json:"etag,omitempty"`
	Sent      int64  `json:"sent"` // bytes this attempt sent (0: already there)
}

// OffsiteGetRequest downloads each object, opens it (a tampered or
// truncated object fails the task with a message naming the key, and
// nothing is written at its path) and writes the file at its path, atomically
// (a .part file renamed once the hash matches). A file already at its path
// with the expected hash is kept and not downloaded.
type OffsiteGetRequest struct {
	InStorage
	Remote  Remote      `json:"remote"`
	Objects []GetObject `json:"objects"`
}

// GetObject is one object to bring back as a backup file.
type GetObject struct {
	Key       string `json:"key"`
	VersionID string `json:"version_id,omitempty"`
	Path      string `json:"path"` // relative to the storage root
	Hash      string `json:"hash"` // the file's "xxh3-128:<hex>"
}

// OffsiteGetResult lists the files written or kept.
type OffsiteGetResult struct {
	Files []GotFile `json:"files"`
}

// GotFile is one backup file brought back.
type GotFile struct {
	Path       string `json:"path"`
	Size       int64  `json:"size"`
	Hash       string `json:"hash"`
	Downloaded bool   `json:"downloaded"` // false: the file was already there
}
