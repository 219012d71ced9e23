package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
)

func isMultipart(r *http.Request) bool {
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mt == "multipart/form-data"
}

// errTooBig marks a file over its field's limit while streaming.
var errTooBig = errors.New("file too large")

// limitReader fails once more than n bytes have been read, so an
// oversize upload is aborted mid-stream rather than stored then checked.
type limitReader struct {
	r io.Reader
	n int64
}

// Read implements io.Reader, failing with errTooBig past the limit.
func (l *limitReader) Read(p []byte) (int, error) {
	n, err := l.r.Read(p)
	l.n -= int64(n)
	if l.n < 0 {
		return n, errTooBig
	}
	return n, err
}

// upload is the state of one multipart request: what was stored so far,
// to remove again if the request fails.
type upload struct {
	store files.Storage
	keys  []string
	names map[string]bool
}

// caller marks the files this request stored as settable.
func (u *upload) caller(c *records.Caller) *records.Caller {
	if len(u.names) == 0 {
		return c
	}
	cp := *c
	cp.Uploaded = u.names
	return &cp
}

func (u *upload) cleanup() {
	for _, k := range u.keys {
		u.store.Delete(context.Background(), k)
	}
}

// parseMultipart streams a multipart/form-data body: file parts go
// straight to storage (content type sniffed from the bytes, size limited
// as they arrive), other parts become body values; "@jsonPayload" carries
// JSON fields. recordID is the id files are stored under (generated for
// creates when the form does not bring one first).
func (s *Server) parseMultipart(w http.ResponseWriter, r *http.Request, c *schema.Collection, recordID string) (map[string]any, *upload, error) {
	st := s.app.Records.Files
	u := &upload{store: st, names: map[string]bool{}}
	if st == nil {
		return nil, u, apierr.BadRequest("File storage is not configured.")
	}
	r.Body = http.MaxBytesReader(w, r.Body, s.opts.MaxUploadBytes)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, u, apierr.BadRequest("Invalid multipart body.")
	}
	body := map[string]any{}
	replace := map[string][]any{}
	appendTo := map[string][]any{}
	fail := func(field, code, msg string) error {
		return apierr.BadRequest("Failed to upload the files.").With(field, code, msg)
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, u, s.uploadErr(err, "Invalid or truncated multipart body.")
		}
		name := part.FormName()
		if part.FileName() == "" {
			val, err := io.ReadAll(io.LimitReader(part, 1<<20+1))
			if err != nil {
				return nil, u, s.uploadErr(err, "Invalid or truncated multipart body.")
			}
			if len(val) > 1<<20 {
				return nil, u, fail(name, "validation_value_too_large", "Form values are limited to 1 MiB.")
			}
			switch {
			case name == "@jsonPayload":
				var m map[string]any
				if json.Unmarshal(val, &m) != nil {
					return nil, u, fail(name, "validation_invalid_json", "Must be a JSON object.")
				}
				for k, v := range m {
					body[k] = v
				}
			case name == "id":
				body["id"] = string(val)
				recordID = string(val)
			default:
				base := strings.TrimRight(name, "+-")
				if f := c.Field(base); f != nil && f.Type == schema.FieldFile && base == name {
					replace[base] = append(replace[base], string(val)) // a kept file name
				} else if prev, ok := body[name]; ok {
					if list, ok := prev.([]any); ok {
						body[name] = append(list, string(val))
					} else {
						body[name] = []any{prev, string(val)}
					}
				} else {
					body[name] = string(val)
				}
			}
			continue
		}
		base, isAppend := strings.CutSuffix(name, "+")
		f := c.Field(base)
		if f == nil || f.Type != schema.FieldFile {
			return nil, u, fail(name, "validation_not_file_field", "Not a file field.")
		}
		if recordID == "" {
			recordID = schema.NewID()
			body["id"] = recordID
		}
		if !schema.ValidRecordID(recordID) {
			return nil, u, fail("id", "validation_invalid_id", "Invalid record id.")
		}
		head := make([]byte, 512)
		n, err := io.ReadFull(part, head)
		if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
			return nil, u, s.uploadErr(err, "Invalid or truncated multipart body.")
		}
		head = head[:n]
		ctype := http.DetectContentType(head)
		if i := strings.IndexByte(ctype, ';'); i >= 0 {
			ctype = ctype[:i]
		}
		if !mimeAllowed(f, ctype) {
			return nil, u, fail(base, "validation_invalid_mime_type", "Files of type "+ctype+" are not allowed here.")
		}
		stored := files.SafeName(part.FileName())
		key := files.Key(c.ID, recordID, stored)
		lr := &limitReader{r: io.MultiReader(bytes.NewReader(head), part), n: f.FileMaxSize()}
		if _, err := st.Put(r.Context(), key, lr, ctype); err != nil {
			if errors.Is(err, errTooBig) {
				return nil, u, fail(base, "validation_file_size_limit", "Each file must be at most "+strconv.FormatInt(f.FileMaxSize(), 10)+" bytes.")
			}
			return nil, u, s.uploadErr(err, "Failed to store the file.")
		}
		u.keys = append(u.keys, key)
		u.names[stored] = true
		if isAppend {
			appendTo[base] = append(appendTo[base], stored)
		} else {
			replace[base] = append(replace[base], stored)
		}
	}
	for name, list := range replace {
		if c.Field(name).Multi() {
			body[name] = list
		} else if len(list) > 0 {
			body[name] = list[len(list)-1]
			if len(list) > 1 {
				return nil, u, fail(name, "validation_too_many_values", "Only one file is allowed.")
			}
		}
	}
	for name, list := range appendTo {
		body[name+"+"] = list
	}
	return body, u, nil
}

func (s *Server) uploadErr(err error, msg string) error {
	var mbe *http.MaxBytesError
	var ae *apierr.Error
	if errors.As(err, &mbe) || errors.As(err, &ae) {
		return err
	}
	e := apierr.BadRequest(msg)
	e.Cause = err
	return e
}

func mimeAllowed(f *schema.Field, ctype string) bool {
	if len(f.MimeTypes) == 0 {
		return true
	}
	for _, m := range f.MimeTypes {
		if m == ctype || (strings.HasSuffix(m, "/*") && strings.HasPrefix(ctype, strings.TrimSuffix(m, "*"))) {
			return true
		}
	}
	return false
}

// serveFile answers GET /api/files/{collection}/{record}/{filename}.
func (s *Server) serveFile(w http.ResponseWriter, r *http.Request) {
	st := s.app.Records.Files
	c, err := s.collection(r)
	if err != nil || st == nil {
		s.fail(w, r, apierr.NotFound("The requested file wasn't found."))
		return
	}
	id, name := r.PathValue("record"), r.PathValue("filename")
	notFound := apierr.NotFound("The requested file wasn't found.")
	if !files.ValidName(name) || !schema.ValidRecordID(id) {
		s.fail(w, r, notFound)
		return
	}
	rec, err := s.app.Records.Lookup(r.Context(), c, id)
	if err != nil || rec == nil {
		s.fail(w, r, notFound)
		return
	}
	var field *schema.Field
	for _, f := range c.Fields {
		if f.Type == schema.FieldFile && slices.Contains(records.ValueList(rec.Values[f.Name]), name) {
			field = f
		}
	}
	if field == nil {
		s.fail(w, r, notFound)
		return
	}
	if field.Protected {
		caller, err := s.app.Records.AuthenticateFileToken(r.Context(), r.URL.Query().Get("token"))
		if err != nil {
			s.fail(w, r, apierr.Forbidden("A valid file token is required for protected files."))
			return
		}
		if _, err := s.app.Records.View(r.Context(), caller, c, id, ""); err != nil {
			s.fail(w, r, notFound)
			return
		}
	}
	key := files.Key(c.ID, id, name)
	if spec := r.URL.Query().Get("thumb"); spec != "" {
		if !slices.Contains(field.Thumbs, spec) {
			s.fail(w, r, apierr.BadRequest("This thumb size is not enabled for the field.").With("thumb", "validation_invalid_thumb", "Allowed: "+strings.Join(field.Thumbs, ", ")))
			return
		}
		tkey, err := s.thumbs.Get(r.Context(), st, key, files.ThumbKey(c.ID, id, name, spec), spec)
		switch {
		case errors.Is(err, files.ErrNotFound):
			s.fail(w, r, notFound)
			return
		case r.Context().Err() != nil:
			return // the client went away
		case err != nil:
			s.fail(w, r, apierr.Internal(err))
			return
		}
		key = tkey
	}
	obj, err := st.Open(r.Context(), key)
	if err != nil {
		s.fail(w, r, notFound)
		return
	}
	defer obj.Close()
	head := make([]byte, 512)
	n, _ := io.ReadFull(obj, head)
	if _, err := obj.Seek(0, io.SeekStart); err != nil {
		s.fail(w, r, apierr.Internal(err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", http.DetectContentType(head[:n]))
	disp := "inline"
	if v, _ := strconv.ParseBool(r.URL.Query().Get("download")); v {
		disp = "attachment"
	}
	h.Set("Content-Disposition", mime.FormatMediaType(disp, map[string]string{"filename": name}))
	// Uploaded HTML or SVG must never run in this origin.
	h.Set("Content-Security-Policy", "default-src 'none'; sandbox")
	if field.Protected {
		h.Set("Cache-Control", "private, no-store")
	} else {
		h.Set("Cache-Control", "public, max-age=604800")
	}
	sum := sha256.Sum256([]byte(key + "|" + strconv.FormatInt(obj.Size(), 10) + "|" + obj.ModTime().UTC().String()))
	h.Set("ETag", `"`+hex.EncodeToString(sum[:12])+`"`)
	if rg := r.Header.Get("Range"); rg != "" && strings.Count(rg, ",") >= maxRanges {
		// Hundreds of tiny ranges make a response far larger and costlier
		// than the file; such a request gets the whole file instead.
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, name, obj.ModTime(), obj)
}

// maxRanges bounds the parts of a multipart range response.
const maxRanges = 16

// fileToken issues a short-lived token for reading protected files.
func (s *Server) fileToken(w http.ResponseWriter, r *http.Request) {
	caller := callerOf(r)
	if caller.Auth == nil {
		s.fail(w, r, apierr.New(http.StatusUnauthorized, "The request requires a valid auth token."))
		return
	}
	tok, err := s.app.Records.IssueFileToken(r.Context(), caller)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": tok})
}
