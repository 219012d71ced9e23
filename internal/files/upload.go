package files

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
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
			return nil, u, uploadErr(err, "Invalid or truncated multipart body.")
		}
		name := part.FormName()
		if part.FileName() == "" {
			val, err := io.ReadAll(io.LimitReader(part, 1<<20+1))
			if err != nil {
				return nil, u, uploadErr(err, "Invalid or truncated multipart body.")
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
			return nil, u, uploadErr(err, "Invalid or truncated multipart body.")
		}
		head = head[:n]
		ctype := http.DetectContentType(head)
		if i := strings.IndexByte(ctype, ';'); i >= 0 {
			ctype = ctype[:i]
		}
		if !mimeAllowed(f, ctype) {
			return nil, u, fail(base, "validation_invalid_mime_type", "Files of type "+ctype+" are not allowed here.")
		}
		stored := SafeName(part.FileName())
		key := Key(c.ID, recordID, stored)
		lr := &limitReader{r: io.MultiReader(bytes.NewReader(head), part), n: f.FileMaxSize()}
		if _, err := st.Put(r.Context(), key, lr, ctype); err != nil {
			if errors.Is(err, errTooBig) {
				return nil, u, fail(base, "validation_file_size_limit", "Each file must be at most "+strconv.FormatInt(f.FileMaxSize(), 10)+" bytes.")
			}
			return nil, u, uploadErr(err, "Failed to store the file.")
		}
		u.keys = append(u.keys, key)
		u.Names[stored] = true
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
