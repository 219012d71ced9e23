package records

import (
	"context"
	"database/sql"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Service runs record operations against one database.
type Service struct {
	DB *sqldb.DB
	// Schema returns the current collections snapshot.
	Schema func() *schema.Snapshot
	// Resolve finds a collection by id or name, re-reading the schema on
	// a miss (one just created through another node); nil: Schema only.
	Resolve func(ctx context.Context, idOrName string) (*schema.Collection, error)
	// Argon2 tunes password hashing for auth collections.
	Argon2 secret.Argon2Params
	// Log receives warnings about external services (may be nil).
	Log *slog.Logger
	// Files stores file field contents (nil: file fields are refused).
	Files files.Storage
	// Mail queues the email flows' messages (set by RegisterMailJobs).
	Mail *mail.Queue
	// Changes is the durable change log every write appends to in its
	// transaction (nil: no log, as in unit tests without a database).
	Changes *changes.Log

	rules sync.Map // rule text -> rules.Expr, rules are few and reused
	hooks hooks
}

// Change actions.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Change is a committed record change. Record holds every stored value
// except secrets (hidden fields included): consumers decide per reader
// what may be shown.
type Change struct {
	Action string
	Record *Record
}

// Limits of the list API.
const (
	DefaultPerPage = 30
	MaxPerPage     = 500
	MaxExpandDepth = 6
	maxSortKeys    = 8
)

func errBadParam(param, msg string) *apierr.Error {
	return apierr.BadRequest("Invalid "+param+" parameter.").With(param, "validation_invalid_"+param, msg)
}

var errSuperusersOnly = func() *apierr.Error {
	return apierr.Forbidden("Only superusers can perform this action.")
}

func (s *Service) env(caller *Caller, trusted bool, body map[string]any) *rules.Env {
	e := &rules.Env{Snapshot: s.Schema(), Trusted: trusted, Body: body, Now: time.Now().UTC()}
	if caller != nil {
		e.Query, e.Headers, e.Method = caller.Query, caller.Headers, caller.Method
		if caller.Auth != nil {
			e.AuthCollection = caller.AuthCollection
			vals := make(map[string]any, len(caller.Auth.Values)+2)
			for k, v := range caller.Auth.Values {
				vals[k] = v
			}
			vals["collectionId"] = caller.AuthCollection.ID
			vals["collectionName"] = caller.AuthCollection.Name
			e.Auth = vals
		}
	}
	if e.Headers == nil {
		e.Headers = http.Header{}
	}
	return e
}

func (s *Service) parseRule(rule string) (rules.Expr, error) {
	if e, ok := s.rules.Load(rule); ok {
		return e.(rules.Expr), nil
	}
	e, err := rules.Parse(rule)
	if err != nil {
		return nil, err
	}
	s.rules.Store(rule, e)
	return e, nil
}

// andRule adds rule's condition to where; never reports a rule that
// holds for no row (nothing to read).
func (s *Service) andRule(b *sqldb.Builder, c *schema.Collection, where, rule string, env *rules.Env) (string, bool, error) {
	r, err := s.ruleCond(b, c, rule, env, nil)
	switch {
	case err != nil:
		return "", false, err
	case r.Const != nil && !*r.Const:
		return "", true, nil
	case r.Const == nil:
		where += " AND " + r.SQL
	}
	return where, false, nil
}

// ruleCond compiles a non-nil, non-superuser rule into b. An error here is
// a server-side problem: rules are validated when saved.
func (s *Service) ruleCond(b *sqldb.Builder, c *schema.Collection, rule string, env *rules.Env, aliases *int) (rules.Result, error) {
	e, err := s.parseRule(rule)
	if err != nil {
		return rules.Result{}, apierr.Internal(err)
	}
	res, err := rules.Compile(b, c, "r", e, env, aliases)
	if err != nil {
		return rules.Result{}, apierr.Internal(err)
	}
	return res, nil
}

// filterCond compiles a client filter; its errors are the client's.
func (s *Service) filterCond(b *sqldb.Builder, c *schema.Collection, src string, env *rules.Env, aliases *int) (rules.Result, error) {
	res, err := rules.CompileString(b, c, "r", src, env, aliases)
	if err != nil {
		return rules.Result{}, errBadParam("filter", err.Error())
	}
	return res, nil
}

// columns lists the selected columns of c; secrets are read only when
// withSecrets is set (authentication), never for ordinary reads.
func columns(d sqldb.Dialect, c *schema.Collection, alias string, withSecrets bool) ([]*schema.Field, string) {
	fields := []*schema.Field{schema.IDField}
	var b strings.Builder
	b.WriteString(alias + "." + d.Quote("id"))
	for _, f := range c.Fields {
		if !withSecrets && (f.Type == schema.FieldPassword || f.Name == "tokenKey") {
			continue
		}
		fields = append(fields, f)
		b.WriteString(", " + alias + "." + d.Quote(f.Name))
	}
	return fields, b.String()
}

func scanRecords(rows *sql.Rows, c *schema.Collection, fields []*schema.Field) ([]*Record, error) {
	defer rows.Close()
	var out []*Record
	raw := make([]any, len(fields))
	ptrs := make([]any, len(fields))
	for i := range raw {
		ptrs[i] = &raw[i]
	}
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return nil, err
		}
		r := &Record{Collection: c, Values: make(map[string]any, len(fields))}
		for i, f := range fields {
			r.Values[f.Name] = scanValue(f, raw[i])
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// ListParams are the list query options.
type ListParams struct {
	Page, PerPage int
	Sort          string
	Filter        string
	Expand        string
	SkipTotal     bool
}

// ListResult is the list response body (before item rendering).
type ListResult struct {
	Page       int       `json:"page"`
	PerPage    int       `json:"perPage"`
	TotalItems int       `json:"totalItems"`
	TotalPages int       `json:"totalPages"`
	Items      []*Record `json:"-"`
}

// List returns one page of the records of c the caller may list. Its
// steps (rule, filter, order, page, total) build one statement together
// and share its argument list, which is why they stay in one function.
func (s *Service) List(ctx context.Context, caller *Caller, c *schema.Collection, p ListParams) (*ListResult, error) {
	su := caller.Superuser()
	if c.ListRule == nil && !su {
		return nil, errSuperusersOnly()
	}
	if p.Page <= 0 {
		p.Page = 1
	}
	if p.PerPage <= 0 {
		p.PerPage = DefaultPerPage
	}
	p.PerPage = min(p.PerPage, MaxPerPage)
	if p.Page > 1_000_000 {
		return nil, errBadParam("page", "Page is too large.")
	}
	res := &ListResult{Page: p.Page, PerPage: p.PerPage, Items: []*Record{}}
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	aliases := new(int)
	var conds []string
	if !su && *c.ListRule != "" {
		r, err := s.ruleCond(b, c, *c.ListRule, s.env(caller, true, nil), aliases)
		if err != nil {
			return nil, err
		}
		if r.Const != nil && !*r.Const {
			return s.emptyPage(res, p), nil
		}
		if r.Const == nil {
			conds = append(conds, r.SQL)
		}
	}
	if strings.TrimSpace(p.Filter) != "" {
		r, err := s.filterCond(b, c, p.Filter, s.env(caller, su, nil), aliases)
		if err != nil {
			return nil, err
		}
		if r.Const != nil && !*r.Const {
			return s.emptyPage(res, p), nil
		}
		if r.Const == nil {
			conds = append(conds, r.SQL)
		}
	}
	where := ""
	if len(conds) > 0 {
		where = " WHERE " + strings.Join(conds, " AND ")
	}
	order, err := s.orderBy(b, caller, c, p.Sort, aliases)
	if err != nil {
		return nil, err
	}
	fields, cols := columns(d, c, "r", false)
	from := " FROM " + d.Quote(c.Name) + " r"
	q := "SELECT " + cols + from + where + order +
		" LIMIT " + strconv.Itoa(p.PerPage) + " OFFSET " + strconv.Itoa((p.Page-1)*p.PerPage)
	rows, err := b.Query(ctx, s.DB.Read, q)
	if err != nil {
		return nil, s.queryErr(err)
	}
	items, err := scanRecords(rows, c, fields)
	if err != nil {
		return nil, s.queryErr(err)
	}
	if items != nil {
		res.Items = items
	}
	if p.SkipTotal {
		res.TotalItems, res.TotalPages = -1, -1
	} else {
		var n int
		if err := b.QueryRow(ctx, s.DB.Read, "SELECT COUNT(*)"+from+where).Scan(&n); err != nil {
			return nil, s.queryErr(err)
		}
		res.TotalItems = n
		res.TotalPages = (n + p.PerPage - 1) / p.PerPage
	}
	if p.Expand != "" {
		if err := s.expand(ctx, caller, c, res.Items, p.Expand); err != nil {
			return nil, err
		}
	}
	return res, nil
}

func (s *Service) emptyPage(res *ListResult, p ListParams) *ListResult {
	if p.SkipTotal {
		res.TotalItems, res.TotalPages = -1, -1
	}
	return res
}

// queryErr maps failures of generated queries. Cancellation is the
// client's doing; anything else is ours and stays out of the response.
// Collection resolves a collection by id or name through Resolve.
func (s *Service) Collection(ctx context.Context, idOrName string) (*schema.Collection, error) {
	if s.Resolve != nil {
		return s.Resolve(ctx, idOrName)
	}
	return s.Schema().Get(idOrName), nil
}

func (s *Service) queryErr(err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		e := apierr.New(http.StatusServiceUnavailable, "The request was cancelled or timed out.")
		e.Cause = err
		return e
	}
	return apierr.Internal(err)
}

func (s *Service) orderBy(b *sqldb.Builder, caller *Caller, c *schema.Collection, sortParam string, aliases *int) (string, error) {
	d := s.DB.Dialect
	var keys []string
	hasID := false
	sortParam = strings.TrimSpace(sortParam)
	if sortParam == "" {
		if f := c.Field("created"); f != nil && f.Type == schema.FieldAutodate {
			keys = append(keys, "r."+d.Quote(f.Name)+" ASC")
		}
	} else {
		parts := strings.Split(sortParam, ",")
		if len(parts) > maxSortKeys {
			return "", errBadParam("sort", "Too many sort keys.")
		}
		for _, part := range parts {
			part = strings.TrimSpace(part)
			dir := " ASC"
			if strings.HasPrefix(part, "-") {
				dir, part = " DESC", part[1:]
			} else if strings.HasPrefix(part, "+") {
				part = part[1:]
			}
			if part == "@random" {
				keys = append(keys, d.Random())
				hasID = true // random order has no stable tie to break
				continue
			}
			segs := strings.Split(part, ".")
			for _, seg := range segs {
				if !schema.ValidIdentifier(seg) {
					return "", errBadParam("sort", "Invalid sort field "+strconv.Quote(part)+".")
				}
			}
			if len(segs) > rules.MaxPathLength {
				return "", errBadParam("sort", "Sort path too long.")
			}
			expr, err := rules.SortExpr(b, c, "r", segs, s.env(caller, caller.Superuser(), nil), aliases)
			if err != nil {
				return "", errBadParam("sort", err.Error())
			}
			if len(segs) == 1 && strings.EqualFold(segs[0], "id") {
				hasID = true
			}
			keys = append(keys, expr+dir)
		}
	}
	if !hasID {
		// A unique tie-breaker keeps pages disjoint and stable.
		keys = append(keys, "r."+d.Quote("id")+" ASC")
	}
	return " ORDER BY " + strings.Join(keys, ", "), nil
}

// View returns one record if the caller's view rule allows it; a hidden
// record is indistinguishable from a missing one.
func (s *Service) View(ctx context.Context, caller *Caller, c *schema.Collection, id, expand string) (*Record, error) {
	su := caller.Superuser()
	if c.ViewRule == nil && !su {
		return nil, errSuperusersOnly()
	}
	r, err := s.fetchOne(ctx, s.DB.Read, caller, c, id, c.ViewRule, su, nil)
	if err != nil {
		return nil, err
	}
	if r == nil {
		return nil, apierr.NotFound("The requested resource wasn't found.")
	}
	if expand != "" {
		if err := s.expand(ctx, caller, c, []*Record{r}, expand); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// fetchOne loads record id of c if rule (when not bypassed) matches it.
func (s *Service) fetchOne(ctx context.Context, q sqldb.Querier, caller *Caller, c *schema.Collection, id string, rule *string, bypass bool, body map[string]any) (*Record, error) {
	if !schema.ValidRecordID(id) {
		return nil, nil
	}
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	where := "r." + d.Quote("id") + " = " + b.Arg(id)
	if !bypass {
		if rule == nil {
			return nil, nil
		}
		if *rule != "" {
			w, never, err := s.andRule(b, c, where, *rule, s.env(caller, true, body))
			if err != nil || never {
				return nil, err
			}
			where = w
		}
	}
	return s.first(ctx, q, b, c, false, where)
}

// first reads the first record of c (alias r) matching where; with
// secrets it includes the password hash and token key. nil when none.
func (s *Service) first(ctx context.Context, q sqldb.Querier, b *sqldb.Builder, c *schema.Collection, secrets bool, where string) (*Record, error) {
	d := s.DB.Dialect
	fields, cols := columns(d, c, "r", secrets)
	rows, err := b.Query(ctx, q, "SELECT "+cols+" FROM "+d.Quote(c.Name)+" r WHERE "+where+" LIMIT 1")
	if err != nil {
		return nil, s.queryErr(err)
	}
	recs, err := scanRecords(rows, c, fields)
	if err != nil {
		return nil, s.queryErr(err)
	}
	if len(recs) == 0 {
		return nil, nil
	}
	return recs[0], nil
}

// expand resolves the comma-separated relation paths of the expand
// parameter on recs. Targets are fetched in one query per relation and
// level, through the target collection's view rule.
func (s *Service) expand(ctx context.Context, caller *Caller, c *schema.Collection, recs []*Record, param string) error {
	var paths [][]string
	for _, p := range strings.Split(param, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		segs := strings.Split(p, ".")
		if len(segs) > MaxExpandDepth {
			return errBadParam("expand", "Expand path "+strconv.Quote(p)+" is too deep.")
		}
		for _, seg := range segs {
			if !schema.ValidIdentifier(seg) {
				return errBadParam("expand", "Invalid expand path "+strconv.Quote(p)+".")
			}
		}
		paths = append(paths, segs)
	}
	if len(paths) > 32 {
		return errBadParam("expand", "Too many expand paths.")
	}
	// A requested expand is always an object, empty when nothing could
	// be expanded (or seen), as PocketBase's clients expect.
	for _, r := range recs {
		if r.Expand == nil {
			r.Expand = map[string]any{}
		}
	}
	return s.expandLevel(ctx, caller, c, recs, paths)
}

// expandLevel expands one level of relation paths for recs: per field it
// collects the target ids of every record, reads them in one query under
// the target's view rule, and recurses for the deeper segments. A segment
// "posts_via_author" is a back-relation: the posts whose author field
// holds the record (see backRelation).
func (s *Service) expandLevel(ctx context.Context, caller *Caller, c *schema.Collection, recs []*Record, paths [][]string) error {
	if len(recs) == 0 || len(paths) == 0 {
		return nil
	}
	groups := map[string][][]string{}
	var order []string
	for _, p := range paths {
		if f := c.Field(p[0]); f == nil || f.Type != schema.FieldRelation {
			if _, _, ok := s.backRelation(c, p[0]); !ok {
				return errBadParam("expand", "Field "+strconv.Quote(p[0])+" of "+c.Name+" is not a relation.")
			}
		}
		if _, ok := groups[p[0]]; !ok {
			order = append(order, p[0])
			groups[p[0]] = nil
		}
		if len(p) > 1 {
			groups[p[0]] = append(groups[p[0]], p[1:])
		}
	}
	su := caller.Superuser()
	for _, name := range order {
		f := c.Field(name)
		if f == nil || f.Type != schema.FieldRelation {
			if err := s.expandBack(ctx, caller, c, recs, name, groups[name]); err != nil {
				return err
			}
			continue
		}
		if f.Hidden && !su {
			continue
		}
		t := s.Schema().Get(f.CollectionID)
		if t == nil || (t.ViewRule == nil && !su) {
			continue
		}
		idSet := map[string]bool{}
		var ids []string
		for _, r := range recs {
			for _, id := range ValueList(r.Values[f.Name]) {
				if !idSet[id] {
					idSet[id] = true
					ids = append(ids, id)
				}
			}
		}
		if len(ids) == 0 {
			continue
		}
		targets, err := s.fetchMany(ctx, caller, t, ids)
		if err != nil {
			return err
		}
		byID := make(map[string]*Record, len(targets))
		for _, tr := range targets {
			byID[tr.ID()] = tr
		}
		if err := s.expandLevel(ctx, caller, t, targets, groups[name]); err != nil {
			return err
		}
		for _, r := range recs {
			rids := ValueList(r.Values[f.Name])
			if f.Multi() {
				list := make([]*Record, 0, len(rids))
				for _, id := range rids {
					if tr := byID[id]; tr != nil {
						list = append(list, tr)
					}
				}
				if len(list) > 0 {
					r.setExpand(f.Name, list)
				}
			} else if len(rids) == 1 && byID[rids[0]] != nil {
				r.setExpand(f.Name, byID[rids[0]])
			}
		}
	}
	return nil
}

// MaxBackRelations bounds the records one back-relation expand reads
// for one level of a request (as PocketBase, 1000).
const MaxBackRelations = 1000

// backRelation resolves "<collection>_via_<field>" seen from c: the
// collection and its relation field that points at c. The collection
// name may itself contain "_via_"; the last occurrence splits.
func (s *Service) backRelation(c *schema.Collection, name string) (*schema.Collection, *schema.Field, bool) {
	i := strings.LastIndex(name, "_via_")
	if i <= 0 {
		return nil, nil, false
	}
	t := s.Schema().Get(name[:i])
	if t == nil || t.IsView() {
		return nil, nil, false
	}
	f := t.Field(name[i+len("_via_"):])
	if f == nil || f.Type != schema.FieldRelation || f.CollectionID != c.ID {
		return nil, nil, false
	}
	return t, f, true
}

// expandBack expands the back-relation name on recs: the records of the
// other collection whose relation field holds each record, read under
// that collection's view rule and its field's hidden flag like any
// expand. A single relation field with a unique index gives one record,
// otherwise a list.
func (s *Service) expandBack(ctx context.Context, caller *Caller, c *schema.Collection, recs []*Record, name string, deeper [][]string) error {
	t, f, _ := s.backRelation(c, name)
	su := caller.Superuser()
	if (f.Hidden && !su) || (t.ViewRule == nil && !su) {
		return nil
	}
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.ID())
	}
	var targets []*Record
	for len(ids) > 0 && len(targets) < MaxBackRelations {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		d := s.DB.Dialect
		b := sqldb.NewBuilder(d)
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			ph[i] = b.Arg(id)
		}
		col := "r." + d.Quote(f.Name)
		where := col + " IN (" + strings.Join(ph, ", ") + ")"
		if f.Multi() {
			where = "EXISTS (SELECT 1 FROM " + d.JSONEach(col, "bj") + " WHERE bj.value IN (" + strings.Join(ph, ", ") + "))"
		}
		more, err := s.fetchViewable(ctx, caller, t, b, where, " ORDER BY r."+d.Quote("id")+" LIMIT "+strconv.Itoa(MaxBackRelations-len(targets)))
		if err != nil {
			return err
		}
		targets = append(targets, more...)
	}
	if err := s.expandLevel(ctx, caller, t, targets, deeper); err != nil {
		return err
	}
	single := !f.Multi() && uniqueColumn(t, f.Name)
	by := map[string][]*Record{}
	for _, tr := range targets {
		for _, id := range ValueList(tr.Values[f.Name]) {
			by[id] = append(by[id], tr)
		}
	}
	for _, r := range recs {
		list := by[r.ID()]
		switch {
		case len(list) == 0:
		case single:
			r.setExpand(name, list[0])
		default:
			r.setExpand(name, list)
		}
	}
	return nil
}

// uniqueColumn reports whether c has a unique index on exactly column.
func uniqueColumn(c *schema.Collection, column string) bool {
	for _, ix := range c.Indexes {
		if ix.Unique && len(ix.Columns) == 1 && ix.Columns[0] == column {
			return true
		}
	}
	return false
}

// fetchMany loads the records of c with the given ids that the caller may view.
func (s *Service) fetchMany(ctx context.Context, caller *Caller, c *schema.Collection, ids []string) ([]*Record, error) {
	var out []*Record
	for len(ids) > 0 {
		chunk := ids[:min(len(ids), 500)]
		ids = ids[len(chunk):]
		d := s.DB.Dialect
		b := sqldb.NewBuilder(d)
		ph := make([]string, len(chunk))
		for i, id := range chunk {
			ph[i] = b.Arg(id)
		}
		recs, err := s.fetchViewable(ctx, caller, c, b, "r."+d.Quote("id")+" IN ("+strings.Join(ph, ", ")+")", "")
		if err != nil {
			return nil, err
		}
		out = append(out, recs...)
	}
	return out, nil
}

// fetchViewable reads the records of c (alias r) matching where that the
// caller may view; tail (ORDER BY, LIMIT) is appended as is.
func (s *Service) fetchViewable(ctx context.Context, caller *Caller, c *schema.Collection, b *sqldb.Builder, where, tail string) ([]*Record, error) {
	d := s.DB.Dialect
	if !caller.Superuser() && *c.ViewRule != "" {
		w, never, err := s.andRule(b, c, where, *c.ViewRule, s.env(caller, true, nil))
		if err != nil || never {
			return nil, err
		}
		where = w
	}
	fields, cols := columns(d, c, "r", false)
	rows, err := b.Query(ctx, s.DB.Read, "SELECT "+cols+" FROM "+d.Quote(c.Name)+" r WHERE "+where+tail)
	if err != nil {
		return nil, s.queryErr(err)
	}
	recs, err := scanRecords(rows, c, fields)
	if err != nil {
		return nil, s.queryErr(err)
	}
	return recs, nil
}
