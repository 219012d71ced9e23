package collections

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/web"
)

// Refresh re-reads the stored schema and reports whether it changed.
// Single-node engines (no notifier) have nothing to catch up with.
func (a *Service) Refresh(ctx context.Context) (bool, error) {
	before := a.Schema().Version
	if err := a.Reload(ctx); err != nil {
		return false, err
	}
	return a.Schema().Version != before, nil
}

// redact hides OAuth2 client secrets: they can be set, never read back
// (an update that omits one keeps it).
func redact(c *schema.Collection) *schema.Collection {
	if c == nil || c.Auth == nil || len(c.Auth.OAuth2.Providers) == 0 {
		return c
	}
	cp := c.Clone()
	for i := range cp.Auth.OAuth2.Providers {
		cp.Auth.OAuth2.Providers[i].ClientSecret = ""
	}
	return cp
}

// HandleList answers GET /api/collections (superusers), paged like every
// list: page (from 1), perPage (default 30, at most 500), skipTotal.
// Clients that fetch "all pages" stop when a page comes back short.
func (a *Service) HandleList(w http.ResponseWriter, r *http.Request) error {
	page, perPage, skipTotal, err := web.PageParams(r)
	if err != nil {
		return err
	}
	all := a.Schema().All()
	items := []any{}
	for i := (page - 1) * perPage; i < len(all) && i < page*perPage; i++ {
		items = append(items, apiCollection(all[i]))
	}
	total := len(all)
	if skipTotal {
		total = -1
	}
	return web.Page(w, page, perPage, total, items)
}

// HandleView answers GET /api/collections/{collection}.
func (a *Service) HandleView(w http.ResponseWriter, r *http.Request) error {
	c, err := records.Collection(r.Context(), a, r.PathValue("collection"))
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, apiCollection(c))
}

// HandleCreate answers POST /api/collections.
func (a *Service) HandleCreate(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	c, err := DecodeCollection(raw, nil)
	if err != nil {
		return err
	}
	c.System = false
	out, err := a.CreateCollection(r.Context(), c)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, apiCollection(out))
}

// HandleUpdate answers PATCH /api/collections/{collection}.
func (a *Service) HandleUpdate(w http.ResponseWriter, r *http.Request) error {
	cur, err := records.Collection(r.Context(), a, r.PathValue("collection"))
	if err != nil {
		return err
	}
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	base, err := detached(cur)
	if err != nil {
		return err
	}
	next, err := DecodeCollection(raw, base)
	if err != nil {
		return err
	}
	next.ID = cur.ID
	out, err := a.UpdateCollection(r.Context(), next)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, apiCollection(out))
}

// HandleDelete answers DELETE /api/collections/{collection}; the
// collection's stored files go with it.
func (a *Service) HandleDelete(w http.ResponseWriter, r *http.Request) error {
	c := a.Schema().Get(r.PathValue("collection"))
	if err := a.DeleteCollection(r.Context(), r.PathValue("collection")); err != nil {
		return err
	}
	if c != nil && a.Records.Files != nil {
		a.Records.Files.DeletePrefix(r.Context(), c.ID+"/")
	}
	return web.NoContent(w)
}

// HandleValidate answers POST /api/collections/validate (superusers): the
// body is checked exactly as POST /api/collections (or, when its "id"
// names an existing collection, as PATCH of that collection) would check
// it — fields, options, indexes, every rule compiled by the rule compiler,
// and the DDL itself in a transaction that is rolled back — and nothing
// is stored. It answers the same error JSON as a real change, or the
// collection as it would be (a view with its inferred fields), so an
// editor can validate as the user types.
func (a *Service) HandleValidate(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	var probe struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(raw, &probe)
	if cur := a.Schema().Get(probe.ID); probe.ID != "" && cur != nil && cur.ID == probe.ID {
		base, err := detached(cur)
		if err != nil {
			return err
		}
		next, err := DecodeCollection(raw, base)
		if err != nil {
			return err
		}
		next.ID = cur.ID
		out, err := a.updateCollection(r.Context(), next, true)
		if err != nil {
			return err
		}
		return web.JSON(w, http.StatusOK, redact(out))
	}
	c, err := DecodeCollection(raw, nil)
	if err != nil {
		return err
	}
	c.System = false
	out, err := a.createCollection(r.Context(), c, true)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, redact(out))
}

// detached is a deep copy of a collection of the live snapshot. Decoding
// a partial update into the snapshot's own collection (or a shallow
// clone) writes through its pointers — the rules — into the schema every
// request reads, so a refused change (say, a valid "listRule": "" next to
// an invalid field) would still take effect in memory.
func detached(c *schema.Collection) (*schema.Collection, error) {
	def, err := encodeCollection(c)
	if err != nil {
		return nil, err
	}
	return decodeCollection(def)
}
