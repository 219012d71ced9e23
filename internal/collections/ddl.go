package collections

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// DecodeCollection reads a collection definition from JSON, rejecting
// unknown keys so a typo in an option is an error rather than ignored.
// When base is non-nil the JSON is a partial update of base.
func DecodeCollection(body []byte, base *schema.Collection) (*schema.Collection, error) {
	body, err := decodePocketBaseAware(body, base)
	if err != nil {
		return nil, err
	}
	c := &schema.Collection{}
	if base != nil {
		c = base.Clone()
		var keys map[string]json.RawMessage
		if err := json.Unmarshal(body, &keys); err != nil {
			return nil, apierr.BadRequest("Invalid JSON body: " + err.Error())
		}
		// Lists are replaced whole, never merged element by element.
		if _, ok := keys["fields"]; ok {
			c.Fields = nil
		}
		if _, ok := keys["indexes"]; ok {
			c.Indexes = nil
		}
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(c); err != nil {
		return nil, apierr.BadRequest("Invalid collection definition: " + err.Error())
	}
	if c.Indexes == nil {
		c.Indexes = []schema.Index{}
	}
	return c, nil
}

func (a *Service) lookupWith(extra *schema.Collection) schema.Lookup {
	snap := a.Schema()
	return func(key string) *schema.Collection {
		if extra != nil && (key == extra.ID || strings.EqualFold(key, extra.Name)) {
			return extra
		}
		return snap.Get(key)
	}
}

// validateRules compiles every rule of every collection against the
// prospective schema, so a change that breaks a rule (a renamed field
// referenced elsewhere, say) is refused before any DDL runs.
func (a *Service) validateRules(next *schema.Snapshot) error {
	for _, c := range next.All() {
		for _, name := range []string{schema.RuleList, schema.RuleView, schema.RuleCreate, schema.RuleUpdate, schema.RuleDelete, "manageRule"} {
			r := c.Rule(name)
			if name == "manageRule" && c.Auth != nil {
				r = c.Auth.ManageRule
			}
			if r == nil || *r == "" {
				continue
			}
			b := sqldb.NewBuilder(a.DB.Dialect)
			env := &rules.Env{Snapshot: next, Trusted: true, Now: time.Now()}
			if _, err := rules.CompileString(b, c, "r", *r, env, nil); err != nil {
				return apierr.BadRequest("Invalid rule in collection "+c.Name+".").With(name, "validation_invalid_rule", err.Error())
			}
		}
	}
	return nil
}

func withCollection(snap *schema.Snapshot, c *schema.Collection, removeID string) *schema.Snapshot {
	var cols []*schema.Collection
	replaced := false
	for _, x := range snap.All() {
		if x.ID == removeID {
			continue
		}
		if c != nil && x.ID == c.ID {
			cols = append(cols, c)
			replaced = true
			continue
		}
		cols = append(cols, x)
	}
	if c != nil && !replaced {
		cols = append(cols, c)
	}
	return schema.NewSnapshot(snap.Version, cols)
}

var viewQueryRe = regexp.MustCompile(`(?is)^\s*(select|with)\s`)

// checkViewQuery accepts a single SELECT (or WITH ... SELECT) statement.
func checkViewQuery(q string) (string, error) {
	q = strings.TrimSpace(q)
	q = strings.TrimSuffix(q, ";")
	if !viewQueryRe.MatchString(q) || strings.Contains(q, ";") || len(q) > 20000 {
		return "", apierr.BadRequest("Invalid view query.").With("viewQuery", "validation_invalid_view_query", "Must be a single SELECT statement.")
	}
	return q, nil
}

// errDryRun rolls back the transaction of a validation-only change.
var errDryRun = errors.New("dry run")

// CreateCollection validates c, creates its table (or view) and indexes
// and records it, all in one transaction.
func (a *Service) CreateCollection(ctx context.Context, c *schema.Collection) (*schema.Collection, error) {
	return a.createCollection(ctx, c, false)
}

func (a *Service) createCollection(ctx context.Context, c *schema.Collection, dry bool) (*schema.Collection, error) {
	defer a.lockSchema(ctx, "")()
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	if a.Schema().Get(c.Name) != nil || (c.ID != "" && a.Schema().Get(c.ID) != nil) {
		return nil, apierr.BadRequest("Failed to create the collection.").With("name", "validation_collection_name_exists", "Collection name or id is already in use.")
	}
	schema.PrepareNew(c)
	now := schema.FormatDate(time.Now())
	c.Created, c.Updated = now, now
	if c.IsView() {
		q, err := checkViewQuery(c.ViewQuery)
		if err != nil {
			return nil, err
		}
		if err := checkViewSecrets(q, a.Schema()); err != nil {
			return nil, err
		}
		c.ViewQuery = q
	}
	if err := schema.Validate(c, a.lookupWith(c)); err != nil {
		return nil, apierr.From(err)
	}
	if err := a.validateRules(withCollection(a.Schema(), c, "")); err != nil {
		return nil, err
	}
	err := a.DB.Tx(ctx, func(tx *sql.Tx) error {
		if err := a.createStorage(ctx, tx, c); err != nil {
			return err
		}
		if c.IsView() {
			// View fields depend on the query, so rules are checked again
			// now that they are known.
			if err := a.validateRules(withCollection(a.Schema(), c, "")); err != nil {
				return err
			}
		}
		if dry {
			return errDryRun
		}
		def, err := encodeCollection(c)
		if err != nil {
			return err
		}
		b := sqldb.NewBuilder(a.DB.Dialect)
		_, err = b.Exec(ctx, tx, "INSERT INTO _collections (id, name, type, system, definition, created, updated) VALUES ("+
			b.Arg(c.ID)+", "+b.Arg(c.Name)+", "+b.Arg(c.Type)+", "+b.Arg(c.System)+", "+b.Arg(def)+", "+b.Arg(c.Created)+", "+b.Arg(c.Updated)+")")
		if err != nil {
			return err
		}
		return a.bumpVersion(ctx, tx)
	})
	if dry && errors.Is(err, errDryRun) {
		return c, nil
	}
	if err != nil {
		return nil, ddlErr(err)
	}
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	a.announceSchema(ctx)
	return a.Schema().Get(c.ID), nil
}

// ddlErr turns engine failures of superuser-authored schema changes into
// 400s: the message names the problem (a view query referencing a missing
// column, say), and the author is a superuser.
func ddlErr(err error) error {
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return err
	}
	var fe schema.FieldErrors
	if errors.As(err, &fe) {
		return apierr.From(err)
	}
	if errors.Is(err, context.Canceled) {
		return apierr.Internal(err)
	}
	e := apierr.BadRequest("The database rejected the schema change.")
	e.With("schema", "validation_ddl_failed", err.Error())
	return e
}

func (a *Service) createStorage(ctx context.Context, tx *sql.Tx, c *schema.Collection) error {
	d := a.DB.Dialect
	if c.IsView() {
		if _, err := tx.ExecContext(ctx, sqldb.CreateView(d, c.Name, c.ViewQuery)); err != nil {
			return err
		}
		return a.inferViewFields(ctx, tx, c)
	}
	if _, err := tx.ExecContext(ctx, sqldb.CreateTable(d, c)); err != nil {
		return err
	}
	for _, ix := range c.Indexes {
		if _, err := tx.ExecContext(ctx, d.CreateIndex(c.Name, ix, partialIndex(c, ix))); err != nil {
			return err
		}
	}
	return nil
}

// partialIndex: a unique index over one optional text-like field skips
// empty values, so many records may leave the field blank.
func partialIndex(c *schema.Collection, ix schema.Index) bool {
	if !ix.Unique || len(ix.Columns) != 1 {
		return false
	}
	f := c.Field(ix.Columns[0])
	return f != nil && f.Name != "id" && f.Column() == schema.ColText
}

// inferViewFields derives a view's fields from its result columns. Fields
// the definition already declares (to mark a column as a relation, say)
// are kept when the column exists.
func (a *Service) inferViewFields(ctx context.Context, tx *sql.Tx, c *schema.Collection) error {
	cols, err := a.DB.Dialect.ViewColumns(ctx, tx, c.ViewQuery)
	if err != nil {
		return err
	}
	hasID := false
	var fields []*schema.Field
	declared := map[string]*schema.Field{}
	for _, f := range c.Fields {
		declared[strings.ToLower(f.Name)] = f
	}
	for _, col := range cols {
		if strings.EqualFold(col.Name, "id") {
			hasID = true
			continue
		}
		if !schema.ValidIdentifier(col.Name) {
			return apierr.BadRequest("Invalid view query.").With("viewQuery", "validation_invalid_view_column", "Column "+col.Name+" needs a plain alias.")
		}
		if f, ok := declared[strings.ToLower(col.Name)]; ok {
			fields = append(fields, f)
			continue
		}
		f := &schema.Field{ID: "f" + schema.RandomString(9), Name: col.Name}
		switch col.Kind {
		case schema.ColNumber:
			f.Type = schema.FieldNumber
		case schema.ColBool:
			f.Type = schema.FieldBool
		case schema.ColJSON, schema.ColArray:
			f.Type = schema.FieldJSON
		default:
			f.Type = schema.FieldText
		}
		fields = append(fields, f)
	}
	if !hasID {
		return apierr.BadRequest("Invalid view query.").With("viewQuery", "validation_missing_id", "The query must return an id column.")
	}
	for name := range declared {
		if !slices.ContainsFunc(fields, func(f *schema.Field) bool { return strings.EqualFold(f.Name, name) }) {
			return apierr.BadRequest("Invalid view fields.").With("fields", "validation_unknown_view_field", "Field "+name+" is not a column of the query.")
		}
	}
	c.Fields = fields
	if err := schema.Validate(c, a.lookupWith(c)); err != nil {
		return err
	}
	return nil
}

// UpdateCollection applies next (a full definition, usually from
// DecodeCollection over the current one) as DDL in one transaction:
// fields are matched by id, so a renamed field keeps its data.
func (a *Service) UpdateCollection(ctx context.Context, next *schema.Collection) (*schema.Collection, error) {
	return a.updateCollection(ctx, next, false)
}

func (a *Service) updateCollection(ctx context.Context, next *schema.Collection, dry bool) (*schema.Collection, error) {
	// A dry run changes nothing: requests in flight need not finish first.
	held := next.ID
	if dry {
		held = ""
	}
	defer a.lockSchema(ctx, held)()
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	old := a.Schema().Get(next.ID)
	if old == nil {
		return nil, apierr.NotFound("Collection not found.")
	}
	if next.Type != old.Type {
		return nil, apierr.BadRequest("Invalid collection.").With("type", "validation_type_change", "The collection type cannot be changed.")
	}
	if old.System && (next.Name != old.Name) {
		return nil, apierr.BadRequest("System collections cannot be renamed.")
	}
	if other := a.Schema().Get(next.Name); other != nil && other.ID != old.ID {
		return nil, apierr.BadRequest("Failed to update the collection.").With("name", "validation_collection_name_exists", "Collection name is already in use.")
	}
	if err := a.carryOver(old, next); err != nil {
		return nil, err
	}
	schema.ApplyDefaults(next)
	if err := schema.Validate(next, a.lookupWith(next)); err != nil {
		return nil, apierr.From(err)
	}
	if err := a.validateRules(withCollection(a.Schema(), next, "")); err != nil {
		return nil, err
	}
	err := a.DB.Tx(ctx, func(tx *sql.Tx) error {
		if next.IsView() {
			if _, err := tx.ExecContext(ctx, sqldb.DropView(a.DB.Dialect, old.Name)); err != nil {
				return err
			}
			if err := a.createStorage(ctx, tx, next); err != nil {
				return err
			}
			if err := a.validateRules(withCollection(a.Schema(), next, "")); err != nil {
				return err
			}
		} else if err := a.alterTable(ctx, tx, old, next); err != nil {
			return err
		}
		if dry {
			return errDryRun
		}
		def, err := encodeCollection(next)
		if err != nil {
			return err
		}
		b := sqldb.NewBuilder(a.DB.Dialect)
		if _, err := b.Exec(ctx, tx, "UPDATE _collections SET name = "+b.Arg(next.Name)+", definition = "+b.Arg(def)+", updated = "+b.Arg(next.Updated)+" WHERE id = "+b.Arg(next.ID)); err != nil {
			return err
		}
		return a.bumpVersion(ctx, tx)
	})
	if dry && errors.Is(err, errDryRun) {
		return next, nil
	}
	if err != nil {
		return nil, ddlErr(err)
	}
	if err := a.Reload(ctx); err != nil {
		return nil, err
	}
	a.announceSchema(ctx)
	return a.Schema().Get(next.ID), nil
}

// carryOver brings into next what an update keeps from old: system
// flags, creation time, the auth secret, OAuth2 client secrets not
// resent, and field identities (renamed fields keep their data, indexes
// follow the rename); a view's query is checked.
func (a *Service) carryOver(old, next *schema.Collection) error {
	next.System, next.Created, next.Updated = old.System, old.Created, schema.FormatDate(time.Now())
	if old.Auth != nil && next.Auth != nil {
		next.Auth.Secret = old.Auth.Secret
		for i, p := range next.Auth.OAuth2.Providers {
			for _, op := range old.Auth.OAuth2.Providers {
				if p.ClientSecret == "" && op.Name == p.Name {
					next.Auth.OAuth2.Providers[i].ClientSecret = op.ClientSecret
				}
			}
		}
	}
	renames, err := matchFields(old, next)
	if err != nil {
		return err
	}
	// Indexes naming a renamed field's old name follow the rename.
	for i := range next.Indexes {
		for j, col := range next.Indexes[i].Columns {
			if nn, ok := renames[strings.ToLower(col)]; ok && next.Field(col) == nil {
				next.Indexes[i].Columns[j] = nn
			}
		}
	}
	if next.IsView() {
		q, err := checkViewQuery(next.ViewQuery)
		if err != nil {
			return err
		}
		if err := checkViewSecrets(q, a.Schema()); err != nil {
			return err
		}
		next.ViewQuery = q
	}
	return nil
}

// matchFields pairs next's fields with old's by id (or, lacking an id, by
// name), assigns ids to new fields and refuses changes storage cannot
// follow. It returns old lower-cased name -> new name for renamed fields.
func matchFields(old, next *schema.Collection) (map[string]string, error) {
	byID := map[string]*schema.Field{}
	for _, f := range old.Fields {
		byID[f.ID] = f
	}
	renames := map[string]string{}
	seen := map[string]bool{}
	for i, f := range next.Fields {
		var of *schema.Field
		if f.ID != "" {
			of = byID[f.ID]
		} else if o := old.Field(f.Name); o != nil && o.Name != "id" && !seen[o.ID] {
			of = o
			f.ID = o.ID
		}
		if of == nil {
			if f.ID == "" {
				f.ID = "f" + schema.RandomString(9)
			}
			continue
		}
		seen[of.ID] = true
		key := "fields." + itoa(i)
		if of.Type != f.Type {
			return nil, apierr.BadRequest("Invalid field change.").With(key, "validation_field_type_change", "The type of field "+of.Name+" cannot be changed; add a new field instead.")
		}
		if of.Multi() != f.Multi() {
			return nil, apierr.BadRequest("Invalid field change.").With(key, "validation_field_multi_change", "Field "+of.Name+" cannot switch between single and multiple values; add a new field instead.")
		}
		if of.System && (of.Name != f.Name || of.Hidden != f.Hidden && of.Type == schema.FieldPassword) {
			return nil, apierr.BadRequest("Invalid field change.").With(key, "validation_system_field", "System field "+of.Name+" cannot be renamed.")
		}
		f.System = of.System
		if of.Name != f.Name {
			renames[strings.ToLower(of.Name)] = f.Name
		}
	}
	for _, of := range old.Fields {
		if !seen[of.ID] && of.System {
			return nil, apierr.BadRequest("Invalid field change.").With("fields", "validation_system_field", "System field "+of.Name+" cannot be removed.")
		}
	}
	return renames, nil
}

func itoa(n int) string { return strconv.Itoa(n) }

func indexEqual(a, b schema.Index) bool {
	return strings.EqualFold(a.Name, b.Name) && a.Unique == b.Unique && slices.Equal(a.Columns, b.Columns)
}

// alterTable moves the table of old to next: drop stale indexes, rename
// the table, drop removed columns, rename columns (through temporary
// names, so swaps work), add new columns, create new indexes.
func (a *Service) alterTable(ctx context.Context, tx *sql.Tx, old, next *schema.Collection) error {
	d := a.DB.Dialect
	exec := func(q string) error { _, err := tx.ExecContext(ctx, q); return err }
	for _, ox := range old.Indexes {
		if !slices.ContainsFunc(next.Indexes, func(nx schema.Index) bool { return indexEqual(ox, nx) }) {
			if err := exec(d.DropIndex(old.Name, ox.Name)); err != nil {
				return err
			}
		}
	}
	table := old.Name
	if old.Name != next.Name {
		if err := exec(sqldb.RenameTable(d, old.Name, next.Name)); err != nil {
			return err
		}
		table = next.Name
	}
	nextByID := map[string]*schema.Field{}
	for _, f := range next.Fields {
		nextByID[f.ID] = f
	}
	type rename struct{ from, tmp, to string }
	var renames []rename
	for _, of := range old.Fields {
		nf, ok := nextByID[of.ID]
		if !ok {
			if err := exec(sqldb.DropColumn(d, table, of.Name)); err != nil {
				return err
			}
			continue
		}
		if nf.Name != of.Name {
			renames = append(renames, rename{of.Name, "_tmp_" + of.ID, nf.Name})
		}
	}
	for _, r := range renames {
		if err := exec(sqldb.RenameColumn(d, table, r.from, r.tmp)); err != nil {
			return err
		}
	}
	for _, r := range renames {
		if err := exec(sqldb.RenameColumn(d, table, r.tmp, r.to)); err != nil {
			return err
		}
	}
	oldIDs := map[string]bool{}
	for _, f := range old.Fields {
		oldIDs[f.ID] = true
	}
	for _, f := range next.Fields {
		if !oldIDs[f.ID] {
			if err := exec(sqldb.AddColumn(d, table, f)); err != nil {
				return err
			}
		}
	}
	for _, nx := range next.Indexes {
		if !slices.ContainsFunc(old.Indexes, func(ox schema.Index) bool { return indexEqual(ox, nx) }) {
			if err := exec(d.CreateIndex(table, nx, partialIndex(next, nx))); err != nil {
				return err
			}
		}
	}
	return nil
}

// DeleteCollection drops a collection that nothing else refers to.
func (a *Service) DeleteCollection(ctx context.Context, idOrName string) error {
	var id string
	if c := a.Schema().Get(idOrName); c != nil {
		id = c.ID
	}
	defer a.lockSchema(ctx, id)()
	if err := a.Reload(ctx); err != nil {
		return err
	}
	c := a.Schema().Get(idOrName)
	if c == nil {
		return apierr.NotFound("Collection not found.")
	}
	if c.System {
		return apierr.BadRequest("System collections cannot be deleted.")
	}
	for _, o := range a.Schema().All() {
		if o.ID == c.ID {
			continue
		}
		for _, f := range o.Fields {
			if f.Type == schema.FieldRelation && f.CollectionID == c.ID {
				return apierr.BadRequest("The collection is referenced by " + o.Name + "." + f.Name + "; remove that relation first.")
			}
		}
	}
	if err := a.validateRules(withCollection(a.Schema(), nil, c.ID)); err != nil {
		return err
	}
	err := a.DB.Tx(ctx, func(tx *sql.Tx) error {
		q := sqldb.DropTable(a.DB.Dialect, c.Name)
		if c.IsView() {
			q = sqldb.DropView(a.DB.Dialect, c.Name)
		}
		if _, err := tx.ExecContext(ctx, q); err != nil {
			return err
		}
		b := sqldb.NewBuilder(a.DB.Dialect)
		if _, err := b.Exec(ctx, tx, "DELETE FROM _collections WHERE id = "+b.Arg(c.ID)); err != nil {
			return err
		}
		return a.bumpVersion(ctx, tx)
	})
	if err != nil {
		return ddlErr(err)
	}
	if err := a.Reload(ctx); err != nil {
		return err
	}
	a.announceSchema(ctx)
	return nil
}
