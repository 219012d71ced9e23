package records

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/web"
)

// SchemaSource is where handlers find collections.
type SchemaSource interface {
	// Collection resolves a collection by id or name, re-reading the
	// schema on a miss; nil when there is none.
	Collection(ctx context.Context, idOrName string) (*schema.Collection, error)
	// Refresh re-reads the schema and reports whether it changed.
	Refresh(ctx context.Context) (changed bool, err error)
	// HoldSchema keeps schema changes through this node from starting
	// until release is called.
	HoldSchema(ctx context.Context, collectionID string) (context.Context, func())
}

// Handlers serve the records API: /api/collections/{collection}/records.
type Handlers struct {
	Records *Service
	Schema  SchemaSource
	// Files stores uploads of multipart requests (nil: none).
	Files files.Storage
	// BatchMax bounds the requests of one POST /api/batch (0: DefaultBatchMax).
	BatchMax int
}

type callerKey struct{}

// WithCaller returns ctx carrying the request's caller.
func WithCaller(ctx context.Context, c *Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller the server authenticated for r (an
// anonymous caller when it has none).
func CallerFrom(r *http.Request) *Caller {
	if c, _ := r.Context().Value(callerKey{}).(*Caller); c != nil {
		return c
	}
	return &Caller{Method: r.Method, Query: r.URL.Query(), Headers: r.Header}
}

// Collection resolves the request's {collection}: 404 when unknown.
func Collection(ctx context.Context, src SchemaSource, name string) (*schema.Collection, error) {
	c, err := src.Collection(ctx, name)
	if err != nil {
		return nil, err
	}
	if c == nil {
		return nil, apierr.NotFound("Missing collection context.")
	}
	return c, nil
}

// fresh runs op against collection c. When op fails with a server error
// and the collection's definition moved on meanwhile (changed through this
// node while the request ran, or through another node whose notification
// is still in flight), it runs op once more against the current
// definition. A failed op has rolled back, so running it again is safe.
func (h *Handlers) fresh(r *http.Request, c *schema.Collection, op func(*schema.Collection) error) error {
	ctx, release := h.Schema.HoldSchema(r.Context(), c.ID)
	defer release()
	// op reads r's context: the hold travels with it (so a hook that
	// changes a collection does not wait for its own request).
	*r = *r.WithContext(ctx)
	// A change made through this node may have landed between resolving
	// c and the hold: start from the current definition.
	if cur, err := Collection(ctx, h.Schema, r.PathValue("collection")); err == nil && cur.ID == c.ID {
		c = cur
	}
	err := op(c)
	// Schema changes in quick succession can overtake one retry.
	for range 3 {
		if err == nil || apierr.From(err).Status < 500 {
			return err
		}
		changed, rerr := h.Schema.Refresh(r.Context())
		if rerr != nil {
			return err
		}
		cur, cerr := Collection(r.Context(), h.Schema, r.PathValue("collection"))
		if cerr != nil {
			return cerr
		}
		if !changed && cur == c {
			return err // the same definition failed: no schema race
		}
		c = cur
		err = op(c)
	}
	return err
}

// List answers GET .../records: page, perPage, sort, filter, fields,
// expand, skipTotal.
func (h *Handlers) List(w http.ResponseWriter, r *http.Request) error {
	c, err := Collection(r.Context(), h.Schema, r.PathValue("collection"))
	if err != nil {
		return err
	}
	q := r.URL.Query()
	page, err := web.IntParam(r, "page")
	if err != nil {
		return err
	}
	perPage, err := web.IntParam(r, "perPage")
	if err != nil {
		return err
	}
	proj, err := ParseFields(q.Get("fields"))
	if err != nil {
		return err
	}
	skip, _ := strconv.ParseBool(q.Get("skipTotal"))
	caller := CallerFrom(r)
	var res *ListResult
	err = h.fresh(r, c, func(c *schema.Collection) (err error) {
		res, err = h.Records.List(r.Context(), caller, c, ListParams{
			Page: page, PerPage: perPage, Sort: q.Get("sort"), Filter: q.Get("filter"), Expand: q.Get("expand"), SkipTotal: skip,
		})
		return err
	})
	if err != nil {
		return err
	}
	items := make([]json.RawMessage, len(res.Items))
	for i, it := range res.Items {
		items[i] = Output(caller, it, proj)
	}
	return web.JSON(w, http.StatusOK, struct {
		*ListResult
		Items []json.RawMessage `json:"items"`
	}{res, items})
}

// View answers GET .../records/{id}.
func (h *Handlers) View(w http.ResponseWriter, r *http.Request) error {
	c, err := Collection(r.Context(), h.Schema, r.PathValue("collection"))
	if err != nil {
		return err
	}
	proj, err := ParseFields(r.URL.Query().Get("fields"))
	if err != nil {
		return err
	}
	caller := CallerFrom(r)
	var rec *Record
	err = h.fresh(r, c, func(c *schema.Collection) (err error) {
		rec, err = h.Records.View(r.Context(), caller, c, r.PathValue("id"), r.URL.Query().Get("expand"))
		return err
	})
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, Output(caller, rec, proj))
}

// writeResult renders a written record, expanded and projected as asked.
func (h *Handlers) writeResult(w http.ResponseWriter, r *http.Request, c *schema.Collection, rec *Record) error {
	caller := CallerFrom(r)
	q := r.URL.Query()
	proj, err := ParseFields(q.Get("fields"))
	if err != nil {
		return err
	}
	if e := q.Get("expand"); e != "" {
		if v, err := h.Records.View(r.Context(), caller, c, rec.ID(), e); err == nil {
			rec = v
		}
	}
	return web.JSON(w, http.StatusOK, Output(caller, rec, proj))
}

// writeBody reads a create/update body: JSON, or multipart with files
// streamed to storage. On any later failure the caller runs Cleanup.
func (h *Handlers) writeBody(r *http.Request, c *schema.Collection, id string) (map[string]any, *files.Upload, error) {
	if !web.IsMultipart(r) {
		body, err := web.DecodeObject(r)
		if err == nil && web.IsForm(r) {
			typeFormValues(c, body)
		}
		return body, &files.Upload{}, err
	}
	body, up, err := files.ParseMultipart(r, h.Files, c, id)
	if err != nil {
		up.Cleanup()
	}
	return body, up, err
}

// typeFormValues gives an urlencoded body's texts their fields' types
// ("views=42" a number, "published=true" a bool), like multipart text.
func typeFormValues(c *schema.Collection, body map[string]any) {
	for k, v := range body {
		f := c.Field(strings.TrimRight(k, "+-"))
		switch x := v.(type) {
		case string:
			body[k] = schema.FromText(f, x)
		case []any:
			for i, it := range x {
				x[i] = schema.FromText(f, it.(string))
			}
		}
	}
}

// uploader is the caller allowed to set the files this request stored.
func uploader(c *Caller, up *files.Upload) *Caller {
	if len(up.Names) == 0 {
		return c
	}
	cp := *c
	cp.Uploaded = up.Names
	return &cp
}

// Create answers POST .../records (JSON or multipart/form-data).
func (h *Handlers) Create(w http.ResponseWriter, r *http.Request) error {
	return h.write(w, r, "")
}

// Update answers PATCH .../records/{id}.
func (h *Handlers) Update(w http.ResponseWriter, r *http.Request) error {
	return h.write(w, r, r.PathValue("id"))
}

func (h *Handlers) write(w http.ResponseWriter, r *http.Request, id string) error {
	c, err := Collection(r.Context(), h.Schema, r.PathValue("collection"))
	if err != nil {
		return err
	}
	body, up, err := h.writeBody(r, c, id)
	if err != nil {
		return err
	}
	caller := uploader(CallerFrom(r), up)
	var rec *Record
	err = h.fresh(r, c, func(c *schema.Collection) (err error) {
		if id == "" {
			rec, err = h.Records.Create(r.Context(), caller, c, body)
		} else {
			rec, err = h.Records.Update(r.Context(), caller, c, id, body)
		}
		return err
	})
	if err != nil {
		up.Cleanup()
		return err
	}
	return h.writeResult(w, r, c, rec)
}

// Delete answers DELETE .../records/{id}.
func (h *Handlers) Delete(w http.ResponseWriter, r *http.Request) error {
	c, err := Collection(r.Context(), h.Schema, r.PathValue("collection"))
	if err != nil {
		return err
	}
	err = h.fresh(r, c, func(c *schema.Collection) error {
		return h.Records.Delete(r.Context(), CallerFrom(r), c, r.PathValue("id"))
	})
	if err != nil {
		return err
	}
	return web.NoContent(w)
}
