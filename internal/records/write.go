package records

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// errRuleFailed is returned when a write rule rejects the request.
func errRuleFailed() *apierr.Error {
	return apierr.Forbidden("You are not allowed to perform this request.")
}

func errReadOnly() *apierr.Error {
	return apierr.BadRequest("View collections are read-only.")
}

// ignoredKeys are response-only keys a client may echo back harmlessly.
var ignoredKeys = map[string]bool{"collectionId": true, "collectionName": true, "expand": true}

// prepared is a validated set of column values to write.
type prepared struct {
	cols []string
	vals []any
}

func (p *prepared) set(col string, v any) {
	if i := slices.Index(p.cols, col); i >= 0 {
		p.vals[i] = v
		return
	}
	p.cols = append(p.cols, col)
	p.vals = append(p.vals, v)
}

// prepare validates body against c. For updates, old is the current
// record and only fields present in body change; "name+" and "name-"
// append to and remove from multi-valued fields. It runs in named steps
// over a preparation (pr): keys, id, then each field.
func (s *Service) prepare(caller *Caller, c *schema.Collection, body map[string]any, old *Record) (*prepared, map[string]bool, error) {
	pr := &preparation{s: s, caller: caller, c: c, body: body, old: old, p: &prepared{}, errs: schema.FieldErrors{}, changed: map[string]bool{},
		// Managers (the collection's manage rule) may do what superusers
		// do to auth fields: set email, password and verified directly.
		su: caller.Superuser() || caller.manager, now: schema.FormatDate(time.Now()), creating: old == nil}
	if pr.checkKeys(); len(pr.errs) > 0 {
		return nil, nil, pr.errs
	}
	if pr.creating {
		pr.setID()
	}
	for _, f := range c.Fields {
		if err := pr.field(f); err != nil {
			return nil, nil, err
		}
	}
	if len(pr.errs) > 0 {
		return nil, nil, pr.errs
	}
	return pr.p, pr.changed, nil
}

// preparation is the state of one prepare call.
type preparation struct {
	s        *Service
	caller   *Caller
	c        *schema.Collection
	body     map[string]any
	old      *Record
	p        *prepared
	errs     schema.FieldErrors
	changed  map[string]bool
	su       bool
	creating bool
	now      string
}

// checkKeys refuses body keys that name no writable field.
func (pr *preparation) checkKeys() {
	for k := range pr.body {
		if ignoredKeys[k] || k == "passwordConfirm" || k == "oldPassword" {
			continue
		}
		if k == "id" {
			if id, _ := pr.body["id"].(string); !pr.creating && id != pr.old.ID() {
				pr.errs["id"] = &schema.ValueError{Code: "validation_readonly", Message: "The id cannot be changed."}
			}
			continue
		}
		name := strings.TrimRight(k, "+-")
		f := pr.c.Field(name)
		switch {
		case f == nil || f.Name == "id":
			pr.errs[k] = &schema.ValueError{Code: "validation_unknown_field", Message: "Unknown field."}
		case name != k && !f.Multi() && f.Type != schema.FieldNumber:
			pr.errs[k] = &schema.ValueError{Code: "validation_invalid_modifier", Message: "+ and - apply to numbers and multi-valued fields only."}
		case f.Name == "tokenKey" || f.Type == schema.FieldAutodate:
			pr.errs[k] = &schema.ValueError{Code: "validation_readonly", Message: "This field is managed by the server."}
		}
	}
}

// setID takes the client's id for a new record, or makes one.
func (pr *preparation) setID() {
	id, _ := pr.body["id"].(string)
	if raw, ok := pr.body["id"]; ok && raw != nil && raw != "" {
		if !schema.ValidRecordID(id) {
			pr.errs["id"] = &schema.ValueError{Code: "validation_invalid_id", Message: "Must be 3-64 characters of letters, digits, _ and -."}
		}
	} else {
		id = schema.NewID()
	}
	pr.p.set("id", id)
}

// field prepares one field's value; only server failures are returned,
// validation failures go to pr.errs.
func (pr *preparation) field(f *schema.Field) error {
	if pr.serverManaged(f) {
		return nil
	}
	raw, present, ve := pr.incoming(f)
	if ve != nil {
		pr.errs[f.Name] = ve
		return nil
	}
	if !present || !pr.authFieldAllowed(f, raw) {
		return nil
	}
	v, err := f.Normalize(raw)
	if err != nil {
		pr.errs[f.Name] = asValueErr(err)
		return nil
	}
	if f.Type == schema.FieldFile {
		if ve := checkFileNames(pr.caller, f, v, pr.old); ve != nil {
			pr.errs[f.Name] = ve
			return nil
		}
	}
	v, ok, err := pr.finish(f, raw, v)
	if err != nil || !ok {
		return err
	}
	pr.p.set(f.Name, v)
	pr.changed[f.Name] = true
	return nil
}

// serverManaged sets the fields clients never write (autodates, the
// token key) and reports whether f is one of them.
func (pr *preparation) serverManaged(f *schema.Field) bool {
	switch {
	case f.Type == schema.FieldAutodate:
		if (pr.creating && f.OnCreate) || (!pr.creating && f.OnUpdate) {
			pr.p.set(f.Name, pr.now)
		} else if pr.creating {
			pr.p.set(f.Name, "")
		}
		return true
	case f.Name == "tokenKey" && pr.c.IsAuth():
		if pr.creating {
			pr.p.set(f.Name, schema.RandomString(50))
		}
		return true
	}
	return false
}

// incoming is the value the request gives f, with "f+"/"f-" modifiers
// applied to the current list; present is false when an update leaves
// f alone.
func (pr *preparation) incoming(f *schema.Field) (raw any, present bool, ve *schema.ValueError) {
	raw, present = pr.body[f.Name]
	add, hasAdd := pr.body[f.Name+"+"]
	sub, hasSub := pr.body[f.Name+"-"]
	if !hasAdd && !hasSub {
		return raw, present || pr.creating, nil
	}
	if f.Type == schema.FieldNumber {
		return pr.arithmetic(f, raw, present, add, hasAdd, sub, hasSub)
	}
	var cur []string
	if present {
		v, err := f.Normalize(raw)
		if err != nil {
			return nil, false, asValueErr(err)
		}
		cur = schema.DecodeList(v)
	} else if pr.old != nil {
		cur, _ = pr.old.Values[f.Name].([]string)
		cur = slices.Clone(cur)
	}
	for _, a := range listArg(add) {
		if !slices.Contains(cur, a) {
			cur = append(cur, a)
		}
	}
	for _, r := range listArg(sub) {
		cur = slices.DeleteFunc(cur, func(x string) bool { return x == r })
	}
	return anyList(cur), true, nil
}

// lockRow holds the row being updated until the transaction ends when
// the body computes from its current values ("views+": 1, "tags-": "x"),
// so concurrent modifiers on PostgreSQL do not lose each other's changes.
// SQLite needs nothing: it has one writer at a time.
func (s *Service) lockRow(ctx context.Context, tx *sql.Tx, c *schema.Collection, id string, body map[string]any) error {
	d := s.DB.Dialect
	if d.Name() != "postgres" || !schema.ValidRecordID(id) {
		return nil
	}
	for k := range body {
		if strings.HasSuffix(k, "+") || strings.HasSuffix(k, "-") {
			if _, err := tx.ExecContext(ctx, "SELECT 1 FROM "+d.Quote(c.Name)+" WHERE "+d.Quote("id")+" = "+d.Placeholder(1)+" FOR UPDATE", id); err != nil {
				return s.queryErr(err)
			}
			return nil
		}
	}
	return nil
}

// arithmetic applies "f+" (add) and "f-" (subtract) to a number field,
// starting from the value given in the same request, else the stored one
// (the update holds the row, see lockRow), else 0.
func (pr *preparation) arithmetic(f *schema.Field, raw any, present bool, add any, hasAdd bool, sub any, hasSub bool) (any, bool, *schema.ValueError) {
	var cur float64
	if present {
		v, err := f.Normalize(raw)
		if err != nil {
			return nil, false, asValueErr(err)
		}
		cur, _ = v.(float64)
	} else if pr.old != nil {
		cur, _ = pr.old.Values[f.Name].(float64)
	}
	for _, m := range []struct {
		v    any
		has  bool
		sign float64
	}{{add, hasAdd, 1}, {sub, hasSub, -1}} {
		if !m.has {
			continue
		}
		n, ok := m.v.(float64)
		if !ok {
			return nil, false, &schema.ValueError{Code: "validation_invalid_number", Message: "The modifier's operand must be a number."}
		}
		cur += m.sign * n
	}
	return cur, true, nil
}

// authFieldAllowed applies who may set an auth record's verified state
// and email directly (superusers and managers); false skips the field.
func (pr *preparation) authFieldAllowed(f *schema.Field, raw any) bool {
	if !pr.c.IsAuth() || pr.su {
		return true
	}
	_, given := pr.body[f.Name]
	switch {
	case f.Name == "verified" && given:
		if b, _ := raw.(bool); pr.creating && !b {
			return false // false is what a new record is anyway
		}
		pr.errs[f.Name] = &schema.ValueError{Code: "validation_forbidden", Message: "Only superusers can change the verified state."}
		return false
	case f.Name == "email" && !pr.creating:
		if s, _ := raw.(string); !strings.EqualFold(strings.TrimSpace(s), pr.old.String("email")) {
			pr.errs[f.Name] = &schema.ValueError{Code: "validation_forbidden", Message: "Only superusers can change the email directly."}
			return false
		}
	}
	return true
}

// finish turns a valid value into what is stored: passwords are checked
// against their confirmation (and, for others' updates, the old password)
// and hashed, which also rotates the token key; auth emails take their
// canonical form. ok is false when a check failed (recorded in errs).
func (pr *preparation) finish(f *schema.Field, raw, v any) (any, bool, error) {
	switch {
	case f.Type == schema.FieldPassword:
		if pc, ok := pr.body["passwordConfirm"]; ok && pc != raw {
			pr.errs["passwordConfirm"] = &schema.ValueError{Code: "validation_values_mismatch", Message: "Values don't match."}
			return nil, false, nil
		}
		if !pr.creating && !pr.su {
			oldPw, _ := pr.body["oldPassword"].(string)
			hash, err := pr.s.passwordHash(pr.caller, pr.c, pr.old.ID())
			if err != nil {
				return nil, false, err
			}
			if ok, _ := secret.CheckPassword(hash, oldPw); !ok {
				pr.errs["oldPassword"] = &schema.ValueError{Code: "validation_invalid_old_password", Message: "Missing or invalid old password."}
				return nil, false, nil
			}
		}
		h, err := secret.HashPassword(v.(string), pr.s.Argon2)
		if err != nil {
			return nil, false, apierr.Internal(err)
		}
		if !pr.creating {
			// A new password revokes every token issued so far.
			pr.p.set("tokenKey", schema.RandomString(50))
		}
		return h, true, nil
	case f.Type == schema.FieldEmail && pr.c.IsAuth() && f.Name == "email":
		return schema.NormalizeIdentity(v.(string)), true, nil
	}
	return v, true, nil
}

func (s *Service) passwordHash(caller *Caller, c *schema.Collection, id string) (string, error) {
	var h string
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	err := b.QueryRow(context.Background(), s.DB.Read, "SELECT "+d.Quote("password")+" FROM "+d.Quote(c.Name)+" WHERE "+d.Quote("id")+" = "+b.Arg(id)).Scan(&h)
	if err != nil {
		return "", apierr.Internal(err)
	}
	return h, nil
}

// checkFileNames allows a file field to hold only names the record
// already has or that this request uploaded, and only in the sizes and
// count the field allows.
func checkFileNames(caller *Caller, f *schema.Field, v any, old *Record) *schema.ValueError {
	names := ValueList(v)
	have := map[string]bool{}
	if old != nil {
		for _, n := range ValueList(old.Values[f.Name]) {
			have[n] = true
		}
	}
	for _, n := range names {
		if !have[n] && (caller == nil || !caller.Uploaded[n]) {
			return &schema.ValueError{Code: "validation_invalid_file", Message: "Unknown file " + n + ": upload files with multipart/form-data."}
		}
	}
	return nil
}

// ValueList lists the values of a single- or multi-valued field, in API
// shape (string, []string) or stored shape (JSON array text).
func ValueList(v any) []string {
	switch x := v.(type) {
	case string:
		if strings.HasPrefix(x, "[") {
			return schema.DecodeList(x)
		}
		if x == "" {
			return nil
		}
		return []string{x}
	case []string:
		return x
	}
	return nil
}

// removedFiles lists the files old had that rec no longer has.
func removedFiles(old, rec *Record) map[*schema.Field][]string {
	out := map[*schema.Field][]string{}
	for _, f := range rec.Collection.Fields {
		if f.Type != schema.FieldFile {
			continue
		}
		keep := map[string]bool{}
		for _, n := range ValueList(rec.Values[f.Name]) {
			keep[n] = true
		}
		for _, n := range ValueList(old.Values[f.Name]) {
			if !keep[n] {
				out[f] = append(out[f], n)
			}
		}
	}
	return out
}

// hasFiles reports whether c has a file field.
func hasFiles(c *schema.Collection) bool {
	for _, f := range c.Fields {
		if f.Type == schema.FieldFile {
			return true
		}
	}
	return false
}

// afterCommit removes stored files nothing refers to any more. It runs
// only after the transaction committed: a rolled-back change must find
// its files still there.
func (s *Service) afterCommit(ctx context.Context, changes []Change, old *Record) {
	if s.Files == nil {
		return
	}
	ctx = context.WithoutCancel(ctx)
	for _, ch := range changes {
		c := ch.Record.Collection
		if !hasFiles(c) {
			continue
		}
		switch {
		case ch.Action == ActionDelete:
			if err := s.Files.DeletePrefix(ctx, c.ID+"/"+ch.Record.ID()+"/"); err != nil {
				slog.Warn("delete record files", "collection", c.Name, "record", ch.Record.ID(), "err", err)
			}
		case ch.Action == ActionUpdate && old != nil && old.ID() == ch.Record.ID():
			for _, names := range removedFiles(old, ch.Record) {
				for _, n := range names {
					s.Files.Delete(ctx, files.Key(c.ID, old.ID(), n))
					s.Files.DeletePrefix(ctx, c.ID+"/"+old.ID()+"/thumbs_"+n+"/")
				}
			}
		}
	}
}

func listArg(v any) []string {
	switch x := v.(type) {
	case string:
		if x == "" {
			return nil
		}
		return []string{x}
	case []any:
		var out []string
		for _, it := range x {
			if s, ok := it.(string); ok && s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	return nil
}

func anyList(l []string) []any {
	out := make([]any, len(l))
	for i, s := range l {
		out[i] = s
	}
	return out
}

func asValueErr(err error) *schema.ValueError {
	var ve *schema.ValueError
	if errors.As(err, &ve) {
		return ve
	}
	return &schema.ValueError{Code: "validation_invalid_value", Message: err.Error()}
}

// checkRelations verifies that every related id exists in its target.
func (s *Service) checkRelations(ctx context.Context, tx *sql.Tx, c *schema.Collection, p *prepared) error {
	errs := schema.FieldErrors{}
	d := s.DB.Dialect
	for i, col := range p.cols {
		f := c.Field(col)
		if f == nil || f.Type != schema.FieldRelation {
			continue
		}
		var ids []string
		if f.Multi() {
			ids = schema.DecodeList(p.vals[i])
		} else if id, _ := p.vals[i].(string); id != "" {
			ids = []string{id}
		}
		if len(ids) == 0 {
			continue
		}
		t := s.Schema().Get(f.CollectionID)
		if t == nil {
			return apierr.Internal(errors.New("relation target missing: " + f.CollectionID))
		}
		b := sqldb.NewBuilder(d)
		ph := make([]string, len(ids))
		for j, id := range ids {
			ph[j] = b.Arg(id)
		}
		var n int
		if err := b.QueryRow(ctx, tx, "SELECT COUNT(*) FROM "+d.Quote(t.Name)+" WHERE "+d.Quote("id")+" IN ("+strings.Join(ph, ", ")+")").Scan(&n); err != nil {
			return s.queryErr(err)
		}
		if n != len(ids) {
			errs[f.Name] = &schema.ValueError{Code: "validation_missing_rel_records", Message: "Failed to find all relation records with the provided ids."}
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return nil
}

// ruleHolds evaluates rule against record id inside tx.
func (s *Service) ruleHolds(ctx context.Context, tx *sql.Tx, caller *Caller, c *schema.Collection, rule string, id string, body map[string]any) (bool, error) {
	if rule == "" {
		return true, nil
	}
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	r, err := s.ruleCond(b, c, rule, s.env(caller, true, body), nil)
	if err != nil {
		return false, err
	}
	if r.Const != nil {
		return *r.Const, nil
	}
	return s.exists(ctx, tx, b, "SELECT 1 FROM "+d.Quote(c.Name)+" r WHERE r."+d.Quote("id")+" = "+b.Arg(id)+" AND "+r.SQL)
}

// newRecordHolds evaluates rule against the record p would create, as a
// derived table with the collection's columns, inside tx.
func (s *Service) newRecordHolds(ctx context.Context, tx *sql.Tx, caller *Caller, c *schema.Collection, rule string, p *prepared, body map[string]any) (bool, error) {
	if rule == "" {
		return true, nil
	}
	b := sqldb.NewBuilder(s.DB.Dialect)
	r, err := s.ruleCond(b, c, rule, s.env(caller, true, body), nil)
	if err != nil {
		return false, err
	}
	if r.Const != nil {
		return *r.Const, nil
	}
	row := s.derivedRow(b, c, func(name string) any {
		if i := slices.Index(p.cols, name); i >= 0 {
			return p.vals[i]
		}
		return nil
	})
	return s.exists(ctx, tx, b, "SELECT 1 FROM "+row+" r WHERE "+r.SQL)
}

// derivedRow renders a one-row table with c's columns, typed as stored,
// holding the given values: rules can then be evaluated against a record
// that is not (or no longer) in its table.
func (s *Service) derivedRow(b *sqldb.Builder, c *schema.Collection, value func(name string) any) string {
	d := s.DB.Dialect
	cols := make([]string, 0, len(c.Fields)+1)
	for _, f := range append([]*schema.Field{schema.IDField}, c.Fields...) {
		cols = append(cols, d.Cast(b.Arg(value(f.Name)), f.Column())+" AS "+d.Quote(f.Name))
	}
	return "(SELECT " + strings.Join(cols, ", ") + ")"
}

// exists runs a SELECT 1 query and reports whether it returned a row.
func (s *Service) exists(ctx context.Context, q sqldb.Querier, b *sqldb.Builder, query string) (bool, error) {
	var one int
	err := b.QueryRow(ctx, q, query).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, s.queryErr(err)
	}
	return true, nil
}

// writeErr maps engine errors of a write: unique violations become field
// errors, everything else a 500.
func (s *Service) writeErr(c *schema.Collection, err error) error {
	var ae *apierr.Error
	var fe schema.FieldErrors
	if errors.As(err, &ae) || errors.As(err, &fe) {
		return err
	}
	detail, ok := s.DB.Dialect.UniqueViolation(err)
	if !ok {
		return s.queryErr(err)
	}
	e := apierr.BadRequest("Failed to save the record: a unique value is already taken.")
	cols := strings.Split(detail, ",")
	for _, ix := range c.Indexes {
		if strings.EqualFold(ix.Name, detail) {
			cols = ix.Columns
		}
	}
	if strings.EqualFold(detail, "id") || strings.HasSuffix(strings.ToLower(detail), "_pkey") {
		cols = []string{"id"}
	}
	for _, col := range cols {
		if col = strings.TrimSpace(col); col != "" && (c.Field(col) != nil) {
			e.With(c.Field(col).Name, "validation_not_unique", "Value must be unique.")
		}
	}
	return e
}

// Create validates body, inserts a record and checks the create rule
// against the stored row inside the same transaction.
func (s *Service) Create(ctx context.Context, caller *Caller, c *schema.Collection, body map[string]any) (*Record, error) {
	return s.create(ctx, caller, c, body, nil)
}

// create is Create with column values the server sets itself (serverSet),
// applied after the caller's body is validated and before the create rule
// runs: the caller cannot supply them, and the rule sees them.
func (s *Service) create(ctx context.Context, caller *Caller, c *schema.Collection, body map[string]any, serverSet map[string]any) (*Record, error) {
	if c.IsView() {
		return nil, errReadOnly()
	}
	su := caller.Superuser()
	if c.CreateRule == nil && !su {
		return nil, errSuperusersOnly()
	}
	if err := s.runBefore(ctx, ActionCreate, caller, c, "", body); err != nil {
		return nil, err
	}
	p, _, err := s.prepare(caller, c, body, nil)
	if err != nil {
		return nil, s.writeErr(c, err)
	}
	for k, v := range serverSet {
		p.set(k, v)
	}
	id := p.vals[0].(string)
	d := s.DB.Dialect
	var rec *Record
	var logged []changes.Entry
	err = s.inTx(ctx, func(tx *sql.Tx) error {
		// The rule is checked first, against the new record's values as
		// a derived row, so a caller the rule rejects learns nothing from
		// later failures (a taken unique value, a missing relation).
		if !su {
			ok, err := s.newRecordHolds(ctx, tx, caller, c, *c.CreateRule, p, body)
			if err != nil {
				return err
			}
			if !ok {
				return errRuleFailed()
			}
		}
		if err := s.checkRelations(ctx, tx, c, p); err != nil {
			return err
		}
		b := sqldb.NewBuilder(d)
		qcols := make([]string, len(p.cols))
		ph := make([]string, len(p.cols))
		for i, col := range p.cols {
			qcols[i] = d.Quote(col)
			ph[i] = b.Arg(p.vals[i])
		}
		if _, err := b.Exec(ctx, tx, "INSERT INTO "+d.Quote(c.Name)+" ("+strings.Join(qcols, ", ")+") VALUES ("+strings.Join(ph, ", ")+")"); err != nil {
			return err
		}
		r, err := s.fetchOne(ctx, tx, caller, c, id, nil, true, nil)
		if err != nil {
			return err
		}
		rec = r
		logged, err = s.logChanges(ctx, tx, []Change{{ActionCreate, rec}})
		return err
	})
	if err != nil {
		return nil, s.writeErr(c, err)
	}
	s.committed(ctx, []Change{{ActionCreate, rec}}, nil, logged)
	return rec, nil
}

// locate finds id for a write whose rule rejected or missed it: 404 when
// the caller cannot see the record at all, 403 when they can.
func (s *Service) locate(ctx context.Context, caller *Caller, c *schema.Collection, id string) error {
	r, err := s.fetchOne(ctx, s.DB.Read, caller, c, id, c.ViewRule, caller.Superuser(), nil)
	if err != nil {
		return err
	}
	if r == nil {
		return apierr.NotFound("The requested resource wasn't found.")
	}
	return errRuleFailed()
}

// Update applies body to record id. The update rule must hold for the
// record as it was (who may touch it) and as it becomes (what it may turn
// into), so no one can move a record out of their own reach or into
// someone else's; both checks run in the write transaction (which keeps
// the steps in one function: they share the transaction and the record).
func (s *Service) Update(ctx context.Context, caller *Caller, c *schema.Collection, id string, body map[string]any) (*Record, error) {
	if c.IsView() {
		return nil, errReadOnly()
	}
	su := caller.Superuser()
	if c.UpdateRule == nil && !su {
		return nil, errSuperusersOnly()
	}
	if err := s.runBefore(ctx, ActionUpdate, caller, c, id, body); err != nil {
		return nil, err
	}
	d := s.DB.Dialect
	var rec, before *Record
	var logged []changes.Entry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		if err := s.lockRow(ctx, tx, c, id, body); err != nil {
			return err
		}
		old, err := s.fetchOne(ctx, tx, caller, c, id, c.UpdateRule, su, body)
		before = old
		if err != nil {
			return err
		}
		if old == nil {
			return errLocate
		}
		prepCaller := caller
		if !su && c.IsAuth() && c.Auth.ManageRule != nil {
			ok, err := s.ruleHolds(ctx, tx, caller, c, *c.Auth.ManageRule, id, body)
			if err != nil {
				return err
			}
			if ok {
				cp := *caller
				cp.manager = true
				prepCaller = &cp
			}
		}
		p, _, err := s.prepare(prepCaller, c, body, old)
		if err != nil {
			return err
		}
		if slices.Contains(p.cols, "tokenKey") {
			// A new key kills every token: the sessions they named go too,
			// in the same transaction.
			b := sqldb.NewBuilder(d)
			if _, err := b.Exec(ctx, tx, "DELETE FROM _sessions WHERE collection = "+b.Arg(c.ID)+" AND record = "+b.Arg(id)); err != nil {
				return err
			}
		}
		if len(p.cols) > 0 {
			if err := s.checkRelations(ctx, tx, c, p); err != nil {
				return err
			}
			b := sqldb.NewBuilder(d)
			sets := make([]string, len(p.cols))
			for i, col := range p.cols {
				sets[i] = d.Quote(col) + " = " + b.Arg(p.vals[i])
			}
			if _, err := b.Exec(ctx, tx, "UPDATE "+d.Quote(c.Name)+" SET "+strings.Join(sets, ", ")+" WHERE "+d.Quote("id")+" = "+b.Arg(id)); err != nil {
				return err
			}
		}
		if !su {
			ok, err := s.ruleHolds(ctx, tx, caller, c, *c.UpdateRule, id, body)
			if err != nil {
				return err
			}
			if !ok {
				return errRuleFailed()
			}
		}
		rec, err = s.fetchOne(ctx, tx, caller, c, id, nil, true, nil)
		if err != nil {
			return err
		}
		logged, err = s.logChanges(ctx, tx, []Change{{ActionUpdate, rec}})
		return err
	})
	if errors.Is(err, errLocate) {
		return nil, s.locate(ctx, caller, c, id)
	}
	if err != nil {
		return nil, s.writeErr(c, err)
	}
	s.committed(ctx, []Change{{ActionUpdate, rec}}, before, logged)
	return rec, nil
}

var errLocate = errors.New("record not matched by rule")

// Delete removes record id, applying relation cascades in the same
// transaction.
func (s *Service) Delete(ctx context.Context, caller *Caller, c *schema.Collection, id string) error {
	if c.IsView() {
		return errReadOnly()
	}
	su := caller.Superuser()
	if c.DeleteRule == nil && !su {
		return errSuperusersOnly()
	}
	if err := s.runBefore(ctx, ActionDelete, caller, c, id, nil); err != nil {
		return err
	}
	var list []Change
	var logged []changes.Entry
	err := s.inTx(ctx, func(tx *sql.Tx) error {
		old, err := s.fetchOne(ctx, tx, caller, c, id, c.DeleteRule, su, nil)
		if err != nil {
			return err
		}
		if old == nil {
			return errLocate
		}
		list = nil
		if err := s.deleteCascade(ctx, tx, c, old, map[string]bool{}, &list); err != nil {
			return err
		}
		logged, err = s.logChanges(ctx, tx, list)
		return err
	})
	if errors.Is(err, errLocate) {
		return s.locate(ctx, caller, c, id)
	}
	if err != nil {
		return s.writeErr(c, err)
	}
	s.committed(ctx, list, nil, logged)
	return nil
}

// deleteCascade deletes one record after resolving every relation that
// points at it: cascade deletes, clears optional references, and refuses
// when a required reference would be left dangling.
func (s *Service) deleteCascade(ctx context.Context, tx *sql.Tx, c *schema.Collection, rec *Record, seen map[string]bool, changes *[]Change) error {
	id := rec.ID()
	key := c.ID + "/" + id
	if seen[key] {
		return nil
	}
	seen[key] = true
	if len(seen) > 10000 {
		return apierr.BadRequest("Too many records would be deleted by cascade.")
	}
	for _, rc := range s.Schema().All() {
		if rc.IsView() {
			continue
		}
		for _, f := range rc.Fields {
			if f.Type != schema.FieldRelation || f.CollectionID != c.ID {
				continue
			}
			if err := s.releaseReferences(ctx, tx, c, id, rc, f, seen, changes); err != nil {
				return err
			}
		}
	}
	d := s.DB.Dialect
	if c.IsAuth() {
		// Nothing may outlive the account: sessions, linked identities,
		// pending one-time codes and MFA steps.
		for _, t := range []string{"_sessions", "_externalAuths", "_otps", "_mfas"} {
			b := sqldb.NewBuilder(d)
			if _, err := b.Exec(ctx, tx, "DELETE FROM "+t+" WHERE collection = "+b.Arg(c.ID)+" AND record = "+b.Arg(id)); err != nil {
				return err
			}
		}
	}
	b := sqldb.NewBuilder(d)
	if _, err := b.Exec(ctx, tx, "DELETE FROM "+d.Quote(c.Name)+" WHERE "+d.Quote("id")+" = "+b.Arg(id)); err != nil {
		return err
	}
	*changes = append(*changes, Change{ActionDelete, rec})
	return nil
}

// reference is a record of rc pointing at a deleted record through a
// relation field, with the field's current ids.
type reference struct {
	id   string
	list []string
}

// referencing lists the records of rc whose field f points at id.
func (s *Service) referencing(ctx context.Context, tx *sql.Tx, rc *schema.Collection, f *schema.Field, id string) ([]reference, error) {
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	col := "r." + d.Quote(f.Name)
	cond := col + " = " + b.Arg(id)
	if f.Multi() {
		cond = "EXISTS (SELECT 1 FROM " + d.JSONEach(col, "je") + " WHERE je.value = " + b.Arg(id) + ")"
	}
	rows, err := b.Query(ctx, tx, "SELECT r."+d.Quote("id")+", "+col+" FROM "+d.Quote(rc.Name)+" r WHERE "+cond)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var refs []reference
	for rows.Next() {
		var rid string
		var raw any
		if err := rows.Scan(&rid, &raw); err != nil {
			return nil, err
		}
		refs = append(refs, reference{rid, schema.DecodeList(scanValue(&schema.Field{Type: schema.FieldText}, raw))})
	}
	return refs, rows.Err()
}

// releaseReferences applies relation field f of rc to the deletion of
// record id of c: referencing records are deleted too (cascadeDelete),
// or have id removed from the field, which a required field refuses.
func (s *Service) releaseReferences(ctx context.Context, tx *sql.Tx, c *schema.Collection, id string, rc *schema.Collection, f *schema.Field, seen map[string]bool, changes *[]Change) error {
	refs, err := s.referencing(ctx, tx, rc, f, id)
	if err != nil {
		return err
	}
	d := s.DB.Dialect
	for _, r := range refs {
		if rc.ID == c.ID && r.id == id {
			continue
		}
		if f.CascadeDelete {
			ref, err := s.fetchOne(ctx, tx, nil, rc, r.id, nil, true, nil)
			if err != nil {
				return err
			}
			if ref != nil {
				if err := s.deleteCascade(ctx, tx, rc, ref, seen, changes); err != nil {
					return err
				}
			}
			continue
		}
		var newVal any = ""
		if f.Multi() {
			left := slices.DeleteFunc(r.list, func(x string) bool { return x == id })
			if len(left) == 0 && f.Required {
				return requiredRefErr(rc, f)
			}
			newVal = schema.EncodeList(left)
		} else if f.Required {
			return requiredRefErr(rc, f)
		}
		ub := sqldb.NewBuilder(d)
		if _, err := ub.Exec(ctx, tx, "UPDATE "+d.Quote(rc.Name)+" SET "+d.Quote(f.Name)+" = "+ub.Arg(newVal)+" WHERE "+d.Quote("id")+" = "+ub.Arg(r.id)); err != nil {
			return err
		}
		if upd, err := s.fetchOne(ctx, tx, nil, rc, r.id, nil, true, nil); err != nil {
			return err
		} else if upd != nil {
			*changes = append(*changes, Change{ActionUpdate, upd})
		}
	}
	return nil
}

func requiredRefErr(rc *schema.Collection, f *schema.Field) *apierr.Error {
	e := apierr.New(http.StatusBadRequest, "The record is referenced by a required relation ("+rc.Name+"."+f.Name+") and cannot be deleted.")
	return e
}
