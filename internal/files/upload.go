package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
)

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

// Upload is the state of one multipart request: what was stored so far,
// to remove again if the request fails.
type Upload struct {
	store Storage
	keys  []string
	// Names are the stored names of the files this request uploaded; a
	// file field may be set to these (or to names the record has).
	Names map[string]bool
}

// Cleanup removes what the request stored; it runs when the request
// fails after its files went to storage.
func (u *Upload) Cleanup() {
	for _, k := range u.keys {
		u.store.Delete(context.Background(), k)
	}
}

// ParseMultipart streams a multipart/form-data body: file parts go
// straight to storage (content type sniffed from the bytes, size limited
// as they arrive), other parts become body values; "@jsonPayload" carries
// JSON fields. recordID is the id files are stored under (generated for
// creates when the form does not bring one first).
func ParseMultipart(r *http.Request, st Storage, c *schema.Collection, recordID string) (map[string]any, *Upload, error) {
	u := &Upload{store: st, Names: map[string]bool{}}
	if st == nil {
		return nil, u, apierr.BadRequest("File storage is not configured.")
	}
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, u, apierr.BadRequest("Invalid multipart body.")
	}
	f := &form{ctx: r.Context(), st: st, c: c, u: u, recordID: recordID,
		body: map[string]any{}, replace: map[string][]any{}, appendTo: map[string][]any{}}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, u, uploadErr(err, "Invalid or truncated multipart body.")
		}
		if part.FileName() == "" {
			err = f.value(part)
		} else {
			err = f.file(part)
		}
		if err != nil {
			return nil, u, err
		}
	}
	body, err := f.result()
	return body, u, err
}

// form is the state of one multipart body being read.
type form struct {
	ctx      context.Context
	st       Storage
	c        *schema.Collection
	u        *Upload
	recordID string
	body     map[string]any
	replace  map[string][]any // file field -> names it is set to
	appendTo map[string][]any // file field -> names appended ("name+")
}

func failUpload(field, code, msg string) error {
	return apierr.BadRequest("Failed to upload the files.").With(field, code, msg)
}

// value reads a non-file part: JSON fields, the id, or a form value.
func (f *form) value(part *multipart.Part) error {
	name := part.FormName()
	val, err := io.ReadAll(io.LimitReader(part, 1<<20+1))
	if err != nil {
		return uploadErr(err, "Invalid or truncated multipart body.")
	}
	if len(val) > 1<<20 {
		return failUpload(name, "validation_value_too_large", "Form values are limited to 1 MiB.")
	}
	switch base := strings.TrimRight(name, "+-"); {
	case name == "@jsonPayload":
		var m map[string]any
		if json.Unmarshal(val, &m) != nil {
			return failUpload(name, "validation_invalid_json", "Must be a JSON object.")
		}
		for k, v := range m {
			f.body[k] = v
		}
	case name == "id":
		f.body["id"] = string(val)
		f.recordID = string(val)
	case base == name && f.c.Field(base) != nil && f.c.Field(base).Type == schema.FieldFile:
		f.replace[base] = append(f.replace[base], string(val)) // a kept file name
	default:
		// Form text becomes the field's type ("42" a number, "true" a
		// bool), as HTML forms and PocketBase's SDKs send it.
		v := schema.FromText(f.c.Field(base), string(val))
		switch prev, seen := f.body[name]; {
		case !seen:
			f.body[name] = v
		case isList(prev):
			f.body[name] = append(prev.([]any), v)
		default:
			f.body[name] = []any{prev, v}
		}
	}
	return nil
}

func isList(v any) bool { _, ok := v.([]any); return ok }

// file streams a file part to storage under the record's folder.
func (f *form) file(part *multipart.Part) error {
	name := part.FormName()
	base, isAppend := strings.CutSuffix(name, "+")
	if f.recordID == "" {
		if fl := f.c.Field(base); fl != nil && fl.Type == schema.FieldFile {
			f.recordID = schema.NewID()
			f.body["id"] = f.recordID
		}
	}
	stored, err := StoreFile(f.ctx, f.st, f.c, f.recordID, base, part.FileName(), part, f.u)
	if err != nil {
		return err
	}
	if isAppend {
		f.appendTo[base] = append(f.appendTo[base], stored)
	} else {
		f.replace[base] = append(f.replace[base], stored)
	}
	return nil
}

// StoreFile streams one uploaded file of field fieldName to storage under
// record recordID of c (content type sniffed from the bytes, size limited
// as it arrives) and records it in u; it returns the stored name.
func StoreFile(ctx context.Context, st Storage, c *schema.Collection, recordID, fieldName, fileName string, r io.Reader, u *Upload) (string, error) {
	field := c.Field(fieldName)
	if field == nil || field.Type != schema.FieldFile {
		return "", failUpload(fieldName, "validation_not_file_field", "Not a file field.")
	}
	if st == nil {
		return "", apierr.BadRequest("File storage is not configured.")
	}
	if !schema.ValidRecordID(recordID) {
		return "", failUpload("id", "validation_invalid_id", "Invalid record id.")
	}
	head := make([]byte, 512)
	n, err := io.ReadFull(r, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return "", uploadErr(err, "Invalid or truncated multipart body.")
	}
	head = head[:n]
	ctype, _, _ := strings.Cut(http.DetectContentType(head), ";")
	if !mimeAllowed(field, ctype) {
		return "", failUpload(fieldName, "validation_invalid_mime_type", "Files of type "+ctype+" are not allowed here.")
	}
	stored := SafeName(fileName)
	key := Key(c.ID, recordID, stored)
	lr := &limitReader{r: io.MultiReader(bytes.NewReader(head), r), n: field.FileMaxSize()}
	if _, err := st.Put(ctx, key, lr, ctype); err != nil {
		if errors.Is(err, errTooBig) {
			return "", failUpload(fieldName, "validation_file_size_limit", "Each file must be at most "+strconv.FormatInt(field.FileMaxSize(), 10)+" bytes.")
		}
		return "", uploadErr(err, "Failed to store the file.")
	}
	u.keys = append(u.keys, key)
	u.Names[stored] = true
	return stored, nil
}

// NewUpload starts the record of files stored for one request.
func NewUpload(st Storage) *Upload { return &Upload{store: st, Names: map[string]bool{}} }

// result is the body with each file field set to its names.
func (f *form) result() (map[string]any, error) {
	for name, list := range f.replace {
		if f.c.Field(name).Multi() {
			f.body[name] = list
		} else if len(list) > 0 {
			f.body[name] = list[len(list)-1]
			if len(list) > 1 {
				return nil, failUpload(name, "validation_too_many_values", "Only one file is allowed.")
			}
		}
	}
	for name, list := range f.appendTo {
		f.body[name+"+"] = list
	}
	return f.body, nil
}

func uploadErr(err error, msg string) error {
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
