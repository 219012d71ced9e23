// Package collections owns the schema: it bootstraps Plinth's system
// tables and migrations, keeps this node's collection snapshot current
// (across nodes too), applies schema changes as DDL, and serves the
// collections API.
package collections

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/plinthhq/plinth/internal/changes"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Service owns the collections of one node.
type Service struct {
	DB      *sqldb.DB
	Records *records.Service
	Log     *slog.Logger

	snap atomic.Pointer[schema.Snapshot]
	// schemaMu serialises schema changes made through this node; other
	// nodes are serialised by the database (the version row update).
	schemaMu sync.Mutex
	opts     Options
	// inUse holds, per collection id, a lock that record requests on
	// the collection hold shared while they run and a change of its
	// definition holds exclusively, so no request on this node runs
	// against a table changed under it (see HoldSchema).
	inUseMu sync.Mutex
	inUse   map[string]*sync.RWMutex
}

type holdKey struct{}

func (a *Service) useLock(collectionID string) *sync.RWMutex {
	a.inUseMu.Lock()
	defer a.inUseMu.Unlock()
	if a.inUse == nil {
		a.inUse = map[string]*sync.RWMutex{}
	}
	l := a.inUse[collectionID]
	if l == nil {
		l = &sync.RWMutex{}
		a.inUse[collectionID] = l
	}
	return l
}

// HoldSchema marks the start of a record request on a collection that
// must not see the collection change under it; call the returned
// function when it is done. Changes of that collection made through this
// node wait for such requests to end (requests through other nodes retry
// on the new definition instead).
func (a *Service) HoldSchema(ctx context.Context, collectionID string) (context.Context, func()) {
	l := a.useLock(collectionID)
	l.RLock()
	return context.WithValue(ctx, holdKey{}, true), l.RUnlock
}

// lockSchema takes the schema-change locks for a change of collection
// collectionID ("" for a new one) made with ctx. A change made from
// inside a held request (a hook changing a collection) does not wait for
// requests to end: it could wait for itself.
func (a *Service) lockSchema(ctx context.Context, collectionID string) func() {
	a.schemaMu.Lock()
	if held, _ := ctx.Value(holdKey{}).(bool); held || collectionID == "" {
		return a.schemaMu.Unlock
	}
	l := a.useLock(collectionID)
	l.Lock()
	return func() { l.Unlock(); a.schemaMu.Unlock() }
}

// New bootstraps db and returns the service over it.
func New(ctx context.Context, db *sqldb.DB, log *slog.Logger, argon secret.Argon2Params, o Options) (*Service, error) {
	if log == nil {
		log = slog.Default()
	}
	a := &Service{DB: db, Log: log, opts: o}
	a.Records = &records.Service{DB: db, Schema: a.Schema, Resolve: a.Collection, Argon2: argon, Log: log, Changes: changes.New(db, log)}
	if db.Lock != nil {
		// Nodes starting together on an empty database would race to
		// create the same tables and apply the same migrations: one at a
		// time, and the later ones find the work done.
		release, err := db.Lock(ctx, bootstrapLock)
		if err != nil {
			return nil, fmt.Errorf("wait for the bootstrap lock: %w", err)
		}
		defer release()
	}
	if err := a.bootstrap(ctx); err != nil {
		return nil, err
	}
	return a, nil
}

// Options shape what a new database starts with.
type Options struct {
	// UsersCollection creates the default "users" auth collection in a
	// database without collections of its own (see DefaultUsers).
	UsersCollection bool
}

// DefaultUsers is the auth collection a new database starts with, as in
// PocketBase: a name and an avatar, sign-up open, each user reading and
// changing only itself.
func DefaultUsers() *schema.Collection {
	self := "id = @request.auth.id"
	open := ""
	max := 255.0
	return &schema.Collection{Name: "users", Type: schema.TypeAuth,
		ListRule: &self, ViewRule: &self, CreateRule: &open, UpdateRule: &self, DeleteRule: &self,
		Fields: []*schema.Field{
			{Name: "name", Type: schema.FieldText, Max: &max},
			{Name: "avatar", Type: schema.FieldFile, MaxSize: 5 << 20, Thumbs: []string{"100x100"},
				MimeTypes: []string{"image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"}},
		}}
}

// bootstrapLock names the cluster-wide lock held while a node creates the
// system tables and applies migrations ("plinth" in ASCII).
const bootstrapLock int64 = 0x706c696e7468

// Schema returns the current collection snapshot.
func (a *Service) Schema() *schema.Snapshot { return a.snap.Load() }

// storedCollection is the persisted form: the API shape plus secrets.
type storedCollection struct {
	*schema.Collection
	AuthSecret string `json:"authSecret,omitempty"`
}

func (a *Service) bootstrap(ctx context.Context) error {
	err := a.DB.Tx(ctx, func(tx *sql.Tx) error {
		for _, q := range sqldb.SystemDDL(a.DB.Dialect) {
			if _, err := tx.ExecContext(ctx, q); err != nil {
				return err
			}
		}
		b := sqldb.NewBuilder(a.DB.Dialect)
		var n int
		if err := b.QueryRow(ctx, tx, "SELECT COUNT(*) FROM _meta WHERE key = "+b.Arg("schema_version")).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			b := sqldb.NewBuilder(a.DB.Dialect)
			if _, err := b.Exec(ctx, tx, "INSERT INTO _meta (key, value) VALUES ("+b.Arg("schema_version")+", "+b.Arg("0")+")"); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create system tables: %w", err)
	}
	if err := a.Reload(ctx); err != nil {
		return err
	}
	return a.migrate(ctx)
}

// migration is a one-time change to the system state, recorded by name.
type migration struct {
	name string
	run  func(ctx context.Context, a *Service) error
}

var migrations = []migration{
	{"0001_superusers", func(ctx context.Context, a *Service) error {
		if a.Schema().Get(schema.SuperusersName) != nil {
			return nil
		}
		c := &schema.Collection{Name: schema.SuperusersName, Type: schema.TypeAuth, System: true,
			Auth: &schema.AuthOptions{TokenDuration: 24 * 3600, MinPasswordLength: 10}}
		_, err := a.CreateCollection(ctx, c)
		return err
	}},
	{"0002_users", func(ctx context.Context, a *Service) error {
		if !a.opts.UsersCollection {
			return nil
		}
		for _, c := range a.Schema().All() {
			if !c.System {
				return nil // an existing installation: its schema is its own
			}
		}
		_, err := a.CreateCollection(ctx, DefaultUsers())
		return err
	}},
}

func (a *Service) migrate(ctx context.Context) error {
	for _, m := range migrations {
		b := sqldb.NewBuilder(a.DB.Dialect)
		var n int
		if err := b.QueryRow(ctx, a.DB.Write, "SELECT COUNT(*) FROM _migrations WHERE name = "+b.Arg(m.name)).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			continue
		}
		if err := m.run(ctx, a); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
		b = sqldb.NewBuilder(a.DB.Dialect)
		if _, err := b.Exec(ctx, a.DB.Write, "INSERT INTO _migrations (name, applied) VALUES ("+b.Arg(m.name)+", "+b.Arg(schema.FormatDate(time.Now()))+")"); err != nil {
			// Another node may have applied it at the same moment.
			if _, ok := a.DB.Dialect.UniqueViolation(err); !ok {
				return err
			}
		}
	}
	return nil
}

// SchemaVersion reads the stored schema version.
func (a *Service) SchemaVersion(ctx context.Context, q sqldb.Querier) (int64, error) {
	b := sqldb.NewBuilder(a.DB.Dialect)
	var v string
	if err := b.QueryRow(ctx, q, "SELECT value FROM _meta WHERE key = "+b.Arg("schema_version")).Scan(&v); err != nil {
		return 0, err
	}
	return strconv.ParseInt(v, 10, 64)
}

// Reload reads all collections from the database into a new snapshot.
func (a *Service) Reload(ctx context.Context) error {
	tx, err := a.DB.Read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback()
	ver, err := a.SchemaVersion(ctx, tx)
	if err != nil {
		return err
	}
	if cur := a.snap.Load(); cur != nil && cur.Version == ver {
		return nil
	}
	rows, err := tx.QueryContext(ctx, "SELECT definition FROM _collections ORDER BY created, id")
	if err != nil {
		return err
	}
	defer rows.Close()
	var cols []*schema.Collection
	for rows.Next() {
		var def string
		if err := rows.Scan(&def); err != nil {
			return err
		}
		c, err := decodeCollection(def)
		if err != nil {
			return err
		}
		cols = append(cols, c)
	}
	if err := rows.Err(); err != nil {
		return err
	}
	// Reloads run concurrently (a schema change here, a notice from
	// another node, a request catching up): never replace a newer
	// snapshot with an older one.
	next := schema.NewSnapshot(ver, cols)
	for {
		cur := a.snap.Load()
		if cur != nil && cur.Version >= ver {
			return nil
		}
		if a.snap.CompareAndSwap(cur, next) {
			return nil
		}
	}
}

func decodeCollection(def string) (*schema.Collection, error) {
	sc := storedCollection{Collection: &schema.Collection{}}
	if err := json.Unmarshal([]byte(def), &sc); err != nil {
		return nil, fmt.Errorf("decode collection: %w", err)
	}
	c := sc.Collection
	if c.Auth != nil {
		c.Auth.Secret = sc.AuthSecret
	}
	if c.Indexes == nil {
		c.Indexes = []schema.Index{}
	}
	schema.ApplyDefaults(c)
	return c, nil
}

func encodeCollection(c *schema.Collection) (string, error) {
	sc := storedCollection{Collection: c}
	if c.Auth != nil {
		sc.AuthSecret = c.Auth.Secret
	}
	b, err := json.Marshal(sc)
	return string(b), err
}

// bumpVersion increments the schema version inside a schema-changing
// transaction; the row lock orders concurrent changes from several nodes.
func (a *Service) bumpVersion(ctx context.Context, tx *sql.Tx) error {
	b := sqldb.NewBuilder(a.DB.Dialect)
	_, err := b.Exec(ctx, tx, "UPDATE _meta SET value = CAST(CAST(value AS BIGINT) + 1 AS TEXT) WHERE key = "+b.Arg("schema_version"))
	return err
}

// UpsertSuperuser creates or updates (password) the superuser with email.
func (a *Service) UpsertSuperuser(ctx context.Context, email, password string) error {
	c := a.Schema().Get(schema.SuperusersName)
	su := &records.Caller{AuthCollection: c, Auth: &records.Record{Collection: c, Values: map[string]any{"id": "cli"}}}
	email = schema.NormalizeIdentity(email)
	b := sqldb.NewBuilder(a.DB.Dialect)
	var id string
	err := b.QueryRow(ctx, a.DB.Read, "SELECT id FROM "+a.DB.Dialect.Quote(c.Name)+" WHERE email = "+b.Arg(email)).Scan(&id)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		_, err = a.Records.Create(ctx, su, c, map[string]any{"email": email, "password": password, "verified": true})
	case err == nil:
		_, err = a.Records.Update(ctx, su, c, id, map[string]any{"password": password})
	}
	return err
}

// DeleteSuperuser removes the superuser with email; it reports whether one existed.
func (a *Service) DeleteSuperuser(ctx context.Context, email string) (bool, error) {
	c := a.Schema().Get(schema.SuperusersName)
	b := sqldb.NewBuilder(a.DB.Dialect)
	res, err := b.Exec(ctx, a.DB.Write, "DELETE FROM "+a.DB.Dialect.Quote(c.Name)+" WHERE email = "+b.Arg(schema.NormalizeIdentity(email)))
	if err != nil {
		return false, err
	}
	n, _ := res.RowsAffected()
	return n > 0, nil
}

// ClaimMigration records migration name as applied; false when it already
// was (here or by another node). The claim comes before the work so two
// nodes starting together do not both run it.
func (a *Service) ClaimMigration(ctx context.Context, name string) (bool, error) {
	b := sqldb.NewBuilder(a.DB.Dialect)
	_, err := b.Exec(ctx, a.DB.Write, "INSERT INTO _migrations (name, applied) VALUES ("+b.Arg(name)+", "+b.Arg(schema.FormatDate(time.Now()))+")")
	if err == nil {
		return true, nil
	}
	if _, dup := a.DB.Dialect.UniqueViolation(err); dup {
		return false, nil
	}
	return false, err
}

// ReleaseMigration forgets a claimed migration that failed.
func (a *Service) ReleaseMigration(ctx context.Context, name string) error {
	b := sqldb.NewBuilder(a.DB.Dialect)
	_, err := b.Exec(ctx, a.DB.Write, "DELETE FROM _migrations WHERE name = "+b.Arg(name))
	return err
}
