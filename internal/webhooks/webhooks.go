// Package webhooks delivers record changes to URLs that superusers
// register, from the durable change log: at least once, in order per
// webhook, signed, retried with backoff, from exactly one node at a time
// (a lease in the database), surviving restarts and node deaths. Each
// (webhook, change) pair becomes a row of _webhookDeliveries, which is
// also the delivery log superusers read.
package webhooks

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/rules"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Options tune delivery.
type Options struct {
	// AllowPrivate permits deliveries to loopback, private and link-local
	// addresses (off: a webhook cannot be pointed at internal services).
	AllowPrivate bool
	// Timeout bounds one delivery attempt (default 10s).
	Timeout time.Duration
	// RetryBase is the wait after the first failure, doubled after each
	// further one up to an hour, with jitter (default 10s).
	RetryBase time.Duration
	// RetryFor is how long a change is retried before it is given up
	// (default 24h); later changes for the webhook wait until then.
	RetryFor time.Duration
	// LeaseTTL is how long a node that stops renewing keeps the delivery
	// job (default 15s).
	LeaseTTL time.Duration
	// Poll is how often the node holding the lease looks for work when
	// nothing woke it (default 1s).
	Poll time.Duration
}

func (o Options) withDefaults() Options {
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.RetryBase <= 0 {
		o.RetryBase = 10 * time.Second
	}
	if o.RetryFor <= 0 {
		o.RetryFor = 24 * time.Hour
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = 15 * time.Second
	}
	return o
}

// Service manages webhooks and delivers to them.
type Service struct {
	db     *sqldb.DB
	recs   *records.Service
	clog   *changes.Log
	log    *slog.Logger
	opts   Options
	node   string
	client *http.Client

	leaseMu sync.Mutex
	renewed time.Time // when this node last wrote the lease
}

// New returns the webhook service of recs' database and change log.
func New(recs *records.Service, log *slog.Logger, o Options) *Service {
	o = o.withDefaults()
	s := &Service{db: recs.DB, recs: recs, clog: recs.Changes, log: log, opts: o, node: schema.RandomString(12),
		client: newHTTPClient(o.Timeout, o.AllowPrivate)}
	// Changes not yet turned into deliveries survive the log's retention
	// (a cluster down for longer than it loses no webhook delivery).
	s.clog.Hold(s.consumed)
	return s
}

// Webhook is one registration.
type Webhook struct {
	ID  string `json:"id"`
	URL string `json:"url"`
	// Collections are names; "*" is every collection.
	Collections []string `json:"collections"`
	Actions     []string `json:"actions"`
	Filter      string   `json:"filter"`
	// Secret signs deliveries; it is shown only when the webhook is
	// created (or the secret replaced).
	Secret  string `json:"secret,omitempty"`
	Enabled bool   `json:"enabled"`
	Created string `json:"created"`
	Updated string `json:"updated"`

	collectionIDs []string // as stored; "*" for all
	since         uint64   // log position when created: later changes only
}

var allActions = []string{records.ActionCreate, records.ActionUpdate, records.ActionDelete}

// input is what create and update accept.
type input struct {
	URL         *string   `json:"url"`
	Collections *[]string `json:"collections"`
	Actions     *[]string `json:"actions"`
	Filter      *string   `json:"filter"`
	Secret      *string   `json:"secret"`
	Enabled     *bool     `json:"enabled"`
}

func invalid(field, code, msg string) *apierr.Error {
	return apierr.BadRequest("Failed to save the webhook.").With(field, code, msg)
}

// apply validates in and applies it to w.
func (s *Service) apply(ctx context.Context, w *Webhook, in input) error {
	if in.URL != nil {
		if err := s.checkURL(*in.URL); err != nil {
			return err
		}
		w.URL = *in.URL
	}
	if in.Collections != nil {
		if len(*in.Collections) == 0 || len(*in.Collections) > 100 {
			return invalid("collections", "validation_required", "List 1 to 100 collection names, or \"*\" for all.")
		}
		ids := make([]string, 0, len(*in.Collections))
		for _, name := range *in.Collections {
			if name == "*" {
				ids = append(ids, "*")
				continue
			}
			c, err := s.recs.Collection(ctx, name)
			if err != nil {
				return err
			}
			if c == nil || c.IsView() {
				return invalid("collections", "validation_invalid_collection", "No base or auth collection "+strconvQuote(name)+".")
			}
			ids = append(ids, c.ID)
		}
		w.collectionIDs = ids
	}
	if in.Actions != nil {
		if len(*in.Actions) == 0 {
			*in.Actions = allActions
		}
		for _, a := range *in.Actions {
			if !slices.Contains(allActions, a) {
				return invalid("actions", "validation_invalid_action", "Actions are create, update and delete.")
			}
		}
		w.Actions = slices.Clone(*in.Actions)
	}
	if in.Filter != nil {
		w.Filter = strings.TrimSpace(*in.Filter)
	}
	if w.Filter != "" {
		if err := s.checkFilter(w); err != nil {
			return err
		}
	}
	if in.Secret != nil {
		if len(*in.Secret) < 16 || len(*in.Secret) > 256 {
			return invalid("secret", "validation_length_out_of_range", "A secret has 16 to 256 characters.")
		}
		w.Secret = *in.Secret
	}
	if in.Enabled != nil {
		w.Enabled = *in.Enabled
	}
	return nil
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// checkURL accepts absolute http(s) URLs; a literal private address is
// refused here already (host names are checked when connecting, so a name
// that resolves to a private address is refused then too).
func (s *Service) checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || len(raw) > 2048 || u.User != nil {
		return invalid("url", "validation_invalid_url", "An absolute http or https URL without credentials, up to 2048 characters.")
	}
	if ip, err := netip.ParseAddr(strings.Trim(u.Hostname(), "[]")); err == nil && !s.opts.AllowPrivate && blocked(ip) {
		return invalid("url", "validation_private_address", "Private, loopback and link-local addresses are refused (a server option allows them).")
	}
	if strings.EqualFold(u.Hostname(), "localhost") && !s.opts.AllowPrivate {
		return invalid("url", "validation_private_address", "Private, loopback and link-local addresses are refused (a server option allows them).")
	}
	return nil
}

// checkFilter compiles the filter against every collection it covers.
func (s *Service) checkFilter(w *Webhook) error {
	e, err := rules.Parse(w.Filter)
	if err != nil {
		return invalid("filter", "validation_invalid_filter", err.Error())
	}
	for _, c := range s.covered(w) {
		if _, err := rules.Compile(sqldb.NewBuilder(s.db.Dialect), c, "r", e, s.recs.Env(nil, true, nil), nil); err != nil {
			return invalid("filter", "validation_invalid_filter", c.Name+": "+err.Error())
		}
	}
	return nil
}

// covered lists the collections w receives changes of.
func (s *Service) covered(w *Webhook) []*schema.Collection {
	var out []*schema.Collection
	for _, c := range s.recs.Schema().All() {
		if !c.IsView() && w.covers(c.ID) {
			out = append(out, c)
		}
	}
	return out
}

func (w *Webhook) covers(collectionID string) bool {
	return slices.Contains(w.collectionIDs, "*") || slices.Contains(w.collectionIDs, collectionID)
}

// names turns stored collection ids into names for output.
func (s *Service) names(w *Webhook) {
	snap := s.recs.Schema()
	w.Collections = make([]string, 0, len(w.collectionIDs))
	for _, id := range w.collectionIDs {
		if id == "*" {
			w.Collections = append(w.Collections, "*")
		} else if c := snap.Get(id); c != nil {
			w.Collections = append(w.Collections, c.Name)
		}
	}
}

// Create registers a webhook; its secret is generated when not given.
func (s *Service) Create(ctx context.Context, raw []byte) (*Webhook, error) {
	var in input
	if err := decodeStrict(raw, &in); err != nil {
		return nil, err
	}
	if in.URL == nil {
		return nil, invalid("url", "validation_required", "Missing url.")
	}
	if in.Collections == nil {
		return nil, invalid("collections", "validation_required", "List the collection names, or \"*\" for all.")
	}
	if in.Actions == nil {
		in.Actions = &allActions
	}
	w := &Webhook{ID: schema.NewID(), Enabled: true}
	if err := s.apply(ctx, w, in); err != nil {
		return nil, err
	}
	if w.Secret == "" {
		w.Secret = "whsec_" + randomHex(24)
	}
	_, head, err := s.clog.Bounds(ctx)
	if err != nil {
		return nil, err
	}
	w.since = head
	w.Created = schema.FormatDate(time.Now())
	w.Updated = w.Created
	cols, _ := json.Marshal(w.collectionIDs)
	acts, _ := json.Marshal(w.Actions)
	b := sqldb.NewBuilder(s.db.Dialect)
	_, err = b.Exec(ctx, s.db.Write, "INSERT INTO _webhooks (id, url, collections, actions, filter, secret, enabled, since, created, updated) VALUES ("+
		b.Arg(w.ID)+", "+b.Arg(w.URL)+", "+b.Arg(string(cols))+", "+b.Arg(string(acts))+", "+b.Arg(w.Filter)+", "+b.Arg(w.Secret)+", "+b.Arg(w.Enabled)+", "+b.Arg(int64(w.since))+", "+b.Arg(w.Created)+", "+b.Arg(w.Updated)+")")
	if err != nil {
		return nil, err
	}
	s.clog.Committed() // wake the deliverer: there is a new webhook
	s.names(w)
	return w, nil
}

// Update changes a webhook; the secret is shown again only if replaced.
func (s *Service) Update(ctx context.Context, id string, raw []byte) (*Webhook, error) {
	var in input
	if err := decodeStrict(raw, &in); err != nil {
		return nil, err
	}
	w, err := s.Get(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.apply(ctx, w, in); err != nil {
		return nil, err
	}
	w.Updated = schema.FormatDate(time.Now())
	cols, _ := json.Marshal(w.collectionIDs)
	acts, _ := json.Marshal(w.Actions)
	b := sqldb.NewBuilder(s.db.Dialect)
	_, err = b.Exec(ctx, s.db.Write, "UPDATE _webhooks SET url = "+b.Arg(w.URL)+", collections = "+b.Arg(string(cols))+", actions = "+b.Arg(string(acts))+
		", filter = "+b.Arg(w.Filter)+", secret = "+b.Arg(w.Secret)+", enabled = "+b.Arg(w.Enabled)+", updated = "+b.Arg(w.Updated)+" WHERE id = "+b.Arg(id))
	if err != nil {
		return nil, err
	}
	if in.Secret == nil {
		w.Secret = ""
	}
	s.names(w)
	return w, nil
}

// Delete removes a webhook and its delivery log.
func (s *Service) Delete(ctx context.Context, id string) error {
	if _, err := s.Get(ctx, id); err != nil {
		return err
	}
	return s.db.Tx(ctx, func(tx *sql.Tx) error {
		b := sqldb.NewBuilder(s.db.Dialect)
		if _, err := b.Exec(ctx, tx, "DELETE FROM _webhookDeliveries WHERE webhook = "+b.Arg(id)); err != nil {
			return err
		}
		b = sqldb.NewBuilder(s.db.Dialect)
		_, err := b.Exec(ctx, tx, "DELETE FROM _webhooks WHERE id = "+b.Arg(id))
		return err
	})
}

var errNotFound = apierr.NotFound("The requested resource wasn't found.")

const webhookColumns = "id, url, collections, actions, filter, secret, enabled, since, created, updated"

func scanWebhook(sc interface{ Scan(...any) error }) (*Webhook, error) {
	var w Webhook
	var cols, acts string
	var since int64
	if err := sc.Scan(&w.ID, &w.URL, &cols, &acts, &w.Filter, &w.Secret, &w.Enabled, &since, &w.Created, &w.Updated); err != nil {
		return nil, err
	}
	json.Unmarshal([]byte(cols), &w.collectionIDs)
	json.Unmarshal([]byte(acts), &w.Actions)
	w.since = uint64(since)
	return &w, nil
}

// Get returns one webhook (its secret included, for internal use).
func (s *Service) Get(ctx context.Context, id string) (*Webhook, error) {
	if !schema.ValidRecordID(id) {
		return nil, errNotFound
	}
	b := sqldb.NewBuilder(s.db.Dialect)
	w, err := scanWebhook(b.QueryRow(ctx, s.db.Read, "SELECT "+webhookColumns+" FROM _webhooks WHERE id = "+b.Arg(id)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, errNotFound
	}
	return w, err
}

// all returns every webhook (enabled only when enabledOnly).
func (s *Service) all(ctx context.Context, enabledOnly bool, limit, offset int) ([]*Webhook, error) {
	q := "SELECT " + webhookColumns + " FROM _webhooks"
	b := sqldb.NewBuilder(s.db.Dialect)
	if enabledOnly {
		q += " WHERE enabled = " + b.Arg(true)
	}
	q += " ORDER BY created, id"
	if limit > 0 {
		q += " LIMIT " + b.Arg(limit) + " OFFSET " + b.Arg(offset)
	}
	rows, err := b.Query(ctx, s.db.Read, q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Webhook
	for rows.Next() {
		w, err := scanWebhook(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, rows.Err()
}

// decodeStrict decodes a JSON object, refusing unknown keys (a typo in a
// key must not silently register a webhook that does something else).
func decodeStrict(raw []byte, v any) error {
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.BadRequest("Invalid webhook: " + err.Error())
	}
	return nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
