package files

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
)

// Access is what serving files needs to know about records and callers;
// the records and identity services provide it (wired by the server).
type Access interface {
	// Collection resolves a collection by id or name (nil when unknown).
	Collection(ctx context.Context, idOrName string) (*schema.Collection, error)
	// RecordFiles returns, per file field, the names record id of c
	// holds, bypassing rules; nil when there is no such record.
	RecordFiles(ctx context.Context, c *schema.Collection, id string) (map[string][]string, error)
	// AuthorizeProtected lets the holder of a file token read the files
	// of record id of c when the record's view rule holds for them; else
	// an error to answer with (403 for a bad token, 404 for a record they
	// may not see).
	AuthorizeProtected(ctx context.Context, token string, c *schema.Collection, id string) error
}

// Handlers serve stored files.
type Handlers struct {
	Storage Storage
	Thumbs  *Thumbnailer
	Access  Access
}

// Serve answers GET /api/files/{collection}/{record}/{filename}: the
// file (or a thumbnail of it) with Range, ETag and Last-Modified, the
// sniffed type and a sandboxing CSP.
func (h *Handlers) Serve(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	notFound := apierr.NotFound("The requested file wasn't found.")
	id, name := r.PathValue("record"), r.PathValue("filename")
	if h.Storage == nil || !ValidName(name) || !schema.ValidRecordID(id) {
		return notFound
	}
	c, err := h.Access.Collection(ctx, r.PathValue("collection"))
	if err != nil {
		return err
	}
	if c == nil {
		return notFound
	}
	field, err := h.fieldHolding(ctx, c, id, name)
	if err != nil || field == nil {
		return cmp.Or(err, error(notFound))
	}
	if field.Protected {
		if err := h.Access.AuthorizeProtected(ctx, r.URL.Query().Get("token"), c, id); err != nil {
			return err
		}
	}
	key := Key(c.ID, id, name)
	if spec := r.URL.Query().Get("thumb"); spec != "" {
		if !slices.Contains(field.Thumbs, spec) {
			return apierr.BadRequest("This thumb size is not enabled for the field.").With("thumb", "validation_invalid_thumb", "Allowed: "+strings.Join(field.Thumbs, ", "))
		}
		tkey, err := h.Thumbs.Get(ctx, h.Storage, key, ThumbKey(c.ID, id, name, spec), spec)
		switch {
		case errors.Is(err, ErrNotFound):
			return notFound
		case ctx.Err() != nil:
			return nil // the client went away
		case err != nil:
			return apierr.Internal(err)
		}
		key = tkey
	}
	obj, err := h.Storage.Open(ctx, key)
	if err != nil {
		return notFound
	}
	defer obj.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(obj, head)
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		return apierr.Internal(err)
	}
	hdr := w.Header()
	hdr.Set("Content-Type", http.DetectContentType(head[:n]))
	disp := "inline"
	if v, _ := strconv.ParseBool(r.URL.Query().Get("download")); v {
		disp = "attachment"
	}
	hdr.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	// Uploaded HTML or SVG must never run in this origin.
	hdr.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if field.Protected {
		hdr.Set("Cache-Control", "private, no-store")
	} else {
		hdr.Set("Cache-Control", "public, max-age=604800")
	}
	sum := sha256.Sum256([]byte(key + "|" + strconv.FormatInt(obj.Size(), 10) + "|" + obj.ModTime().UTC().String()))
	hdr.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	if rg := r.Header.Get("Range"); rg != "" && strings.Count(rg, ",") >= maxRanges {
		// Hundreds of tiny ranges make a response far larger and costlier
		// than the file; such a request gets the whole file instead.
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, name, obj.ModTime(), obj)
	return nil
}

// fieldHolding returns the file field of record id that holds name.
func (h *Handlers) fieldHolding(ctx context.Context, c *schema.Collection, id, name string) (*schema.Field, error) {
	held, err := h.Access.RecordFiles(ctx, c, id)
	if err != nil || held == nil {
		return nil, err
	}
	for _, f := range c.Fields {
		if f.Type == schema.FieldFile && slices.Contains(held[f.Name], name) {
			return f, nil
		}
	}
	return nil, nil
}

// maxRanges bounds the parts of a multipart range response.
const maxRanges = 16
