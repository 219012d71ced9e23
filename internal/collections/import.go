package collections

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/web"
)

// ImportRequest is the body of PUT /api/collections/import: collection
// definitions in Plinth's or PocketBase's shape (its "export collections"
// output), and whether collections missing from them are deleted.
type ImportRequest struct {
	Collections   []json.RawMessage `json:"collections"`
	DeleteMissing bool              `json:"deleteMissing"`
}

// maxImport bounds the definitions of one import.
const maxImport = 500

// HandleImport answers PUT /api/collections/import (superusers): it
// creates the collections that do not exist (matched by id, then name)
// and updates those that do, then deletes the others if asked.
func (a *Service) HandleImport(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	var req ImportRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return apierr.BadRequest("Invalid JSON body: expected {\"collections\": [...], \"deleteMissing\": false}.")
	}
	if err := a.Import(r.Context(), req.Collections, req.DeleteMissing); err != nil {
		return err
	}
	return web.NoContent(w)
}

// Import applies collection definitions (see HandleImport). System
// collections (names starting with "_", as in PocketBase's exports) are
// skipped: each system has its own. Collections are created in two
// steps so they may refer to each other in any order: first each new one
// without its relations to collections not there yet and without rules,
// then every definition in full. Each step is its own schema change: a
// definition refused midway leaves the earlier ones applied, and the
// error names the collection.
func (a *Service) Import(ctx context.Context, defs []json.RawMessage, deleteMissing bool) error {
	if len(defs) > maxImport {
		return apierr.BadRequest("Too many collections in one import.")
	}
	type item struct {
		name string
		raw  []byte
		def  *schema.Collection
	}
	var items []item
	for i, raw := range defs {
		c, err := DecodeCollection(raw, nil)
		if err != nil {
			var head struct {
				Name string `json:"name"`
			}
			json.Unmarshal(raw, &head) // best effort: the error names what it can
			return importErr(i, head.Name, err)
		}
		if strings.HasPrefix(c.Name, "_") {
			continue
		}
		items = append(items, item{c.Name, raw, c})
	}
	snap := a.Schema()
	existing := func(c *schema.Collection) *schema.Collection {
		if c.ID != "" {
			if x := snap.Get(c.ID); x != nil && x.ID == c.ID {
				return x
			}
		}
		return snap.Get(c.Name)
	}
	// A definition matched by name to a collection with another id (the
	// users collection a new database starts with, say) keeps the local
	// id: relations the definitions make to the imported id are pointed
	// at the local one.
	alias := map[string]string{}
	for _, it := range items {
		if cur := existing(it.def); cur != nil && it.def.ID != "" && cur.ID != it.def.ID {
			alias[it.def.ID] = cur.ID
		}
	}
	if len(alias) > 0 {
		for i := range items {
			raw, err := retarget(items[i].raw, alias)
			if err != nil {
				return importErr(i, items[i].name, err)
			}
			def, err := DecodeCollection(raw, nil)
			if err != nil {
				return importErr(i, items[i].name, err)
			}
			items[i].raw, items[i].def = raw, def
		}
	}
	// Step 1: skeletons of the new collections, tables before views.
	for _, views := range []bool{false, true} {
		for i, it := range items {
			if existing(it.def) != nil || it.def.IsView() != views {
				continue
			}
			sk := skeleton(it.def, snap)
			if _, err := a.CreateCollection(ctx, sk); err != nil {
				return importErr(i, it.name, err)
			}
		}
	}
	// Step 2: every definition in full.
	for i, it := range items {
		cur := a.Schema().Get(it.def.Name)
		if it.def.ID != "" && a.Schema().Get(it.def.ID) != nil {
			cur = a.Schema().Get(it.def.ID)
		}
		if cur == nil {
			return importErr(i, it.name, apierr.BadRequest("The collection was not created."))
		}
		next, err := DecodeCollection(it.raw, cur)
		if err != nil {
			return importErr(i, it.name, err)
		}
		next.ID = cur.ID
		if _, err := a.UpdateCollection(ctx, next); err != nil {
			return importErr(i, it.name, err)
		}
	}
	if deleteMissing {
		keep := map[string]bool{}
		for _, it := range items {
			keep[strings.ToLower(it.name)] = true
		}
		for _, c := range a.Schema().All() {
			if c.System || strings.HasPrefix(c.Name, "_") || keep[strings.ToLower(c.Name)] {
				continue
			}
			if err := a.DeleteCollection(ctx, c.ID); err != nil {
				return importErr(-1, c.Name, err)
			}
		}
	}
	return nil
}

// retarget rewrites the relation targets of a definition by alias.
func retarget(raw []byte, alias map[string]string) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, apierr.BadRequest("Invalid collection definition.")
	}
	fields, _ := m["fields"].([]any)
	for _, f := range fields {
		fm, _ := f.(map[string]any)
		if id, ok := fm["collectionId"].(string); ok && alias[id] != "" {
			fm["collectionId"] = alias[id]
		}
	}
	return json.Marshal(m)
}

// skeleton is def without rules and without relation fields (and the
// indexes over them) whose target does not exist yet, so it can be
// created before the collections it refers to.
func skeleton(def *schema.Collection, snap *schema.Snapshot) *schema.Collection {
	sk := def.Clone()
	sk.ListRule, sk.ViewRule, sk.CreateRule, sk.UpdateRule, sk.DeleteRule = nil, nil, nil, nil, nil
	if sk.Auth != nil {
		sk.Auth.ManageRule = nil
	}
	dropped := map[string]bool{}
	fields := sk.Fields[:0]
	for _, f := range sk.Fields {
		if f.Type == schema.FieldRelation && f.CollectionID != def.ID && !strings.EqualFold(f.CollectionID, def.Name) && snap.Get(f.CollectionID) == nil {
			dropped[strings.ToLower(f.Name)] = true
			continue
		}
		fields = append(fields, f)
	}
	sk.Fields = fields
	indexes := sk.Indexes[:0]
	for _, ix := range sk.Indexes {
		uses := false
		for _, col := range ix.Columns {
			uses = uses || dropped[strings.ToLower(col)]
		}
		if !uses {
			indexes = append(indexes, ix)
		}
	}
	sk.Indexes = indexes
	return sk
}

// importErr names the collection an import failed at (by position when
// its definition could not be read).
func importErr(i int, name string, err error) error {
	what := name
	if what == "" {
		what = "#" + strconv.Itoa(i)
	}
	var ae *apierr.Error
	if !errors.As(err, &ae) {
		return err
	}
	out := apierr.New(ae.Status, "Failed to import collection "+what+": "+ae.Message)
	out.Data, out.Cause = ae.Data, ae.Cause
	return out
}

// Export is every collection as the API lists it (secrets redacted, the
// id field listed), as indented JSON: a file Import reads back, and the
// shape PocketBase's import accepts for what they share.
func (a *Service) Export() ([]byte, error) {
	all := a.Schema().All()
	out := make([]any, 0, len(all))
	for _, c := range all {
		out = append(out, apiCollection(c))
	}
	return json.MarshalIndent(out, "", "  ")
}

// ImportJSON is Import of a file: a JSON array of definitions (what
// Export and PocketBase's "export collections" write) or an object
// {"collections": [...]}.
func (a *Service) ImportJSON(ctx context.Context, data []byte, deleteMissing bool) error {
	var defs []json.RawMessage
	if err := json.Unmarshal(data, &defs); err != nil {
		var req ImportRequest
		if err2 := json.Unmarshal(data, &req); err2 != nil || req.Collections == nil {
			return apierr.BadRequest("Invalid schema file: expected a JSON array of collections or {\"collections\": [...]}.")
		}
		defs = req.Collections
	}
	return a.Import(ctx, defs, deleteMissing)
}
