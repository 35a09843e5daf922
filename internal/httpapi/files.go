package httpapi

import (
	"context"
	"net/http"

	"github.com/klauspost/compress/zstd"

	"github.com/knib/knib/internal/agentrpc"
	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/files"
)

// registerFiles adds file-level restore: listing, the streamed tar, and the
// restore into a running VM.
func (h *Handler) registerFiles() {
	svc := h.svc
	add(h, "GET", "/backups/{id}/files", "files", "List a backup's volumes, or a directory of one (offerings with allow_extract_file)", http.StatusOK,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.FileQuery, _ api.Empty) (api.FileListing, error) {
			res, err := svc.Files.List(ctx, p, r.PathValue("id"), q.Disk, q.Path)
			if err != nil {
				return api.FileListing{}, err
			}
			out := api.FileListing{Backup: r.PathValue("id"), Volume: res.Volume, Path: res.Path}
			for _, v := range res.Volumes {
				out.Volumes = append(out.Volumes, api.FileVolume(v))
			}
			for _, e := range res.Entries {
				out.Entries = append(out.Entries, api.FileEntry(e))
			}
			return out, nil
		})
	h.routes = append(h.routes, route{method: "POST", path: "/backups/{id}/files/extract", tag: "files", status: http.StatusOK, produces: "application/x-tar",
		summary: "Stream files and directories of a backup as a tar archive (zstd on request); an error after the stream began ends it and is sent in the Knib-Error trailer",
		query:   typeOf[none](), body: typeOf[api.FileExtract](), resp: typeOf[[]byte](),
		serve: func(w http.ResponseWriter, r *http.Request, p domain.Principal) error {
			var b api.FileExtract
			if err := decodeBody(r, &b); err != nil {
				return err
			}
			if b.Compression != "" && b.Compression != "zstd" {
				return domain.Invalid("compression", "want zstd or nothing, got %q", b.Compression)
			}
			ctype := "application/x-tar"
			if b.Compression == "zstd" {
				ctype = "application/zstd"
			}
			sw := &agentrpc.StreamWriter{W: w, ContentType: ctype}
			var err error
			if b.Compression == "zstd" {
				zw, zerr := zstd.NewWriter(sw, zstd.WithEncoderLevel(zstd.SpeedFastest))
				if zerr != nil {
					return zerr
				}
				err = svc.Files.Extract(r.Context(), p, r.PathValue("id"), b.Disk, b.Paths, zw)
				// Close ends the frame (and the encoder's goroutines).
				if cerr := zw.Close(); err == nil {
					err = cerr
				}
			} else {
				err = svc.Files.Extract(r.Context(), p, r.PathValue("id"), b.Disk, b.Paths, sw)
			}
			switch {
			case err == nil && !sw.Started():
				sw.Write(nil)
			case err != nil && !sw.Started():
				return err
			case err != nil:
				h.log.Warn("file extraction broke off", "backup", r.PathValue("id"), "err", err)
				sw.Fail(err)
			}
			return nil
		}})
	add(h, "POST", "/backups/{id}/files/restore", "files", "Write files of a backup into a running VM through its guest agent", http.StatusAccepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.FileRestore) (api.Operation, error) {
			op, err := svc.Files.Restore(ctx, p, r.PathValue("id"), b.Disk, b.Paths, files.RestoreOptions{VM: b.VM, To: b.To, Overwrite: b.Overwrite})
			return operationToAPI(op), err
		})
}
