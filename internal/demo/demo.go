// Package demo builds the microblog showcase: the collections and rules of
// a Twitter-like app (users, posts, follows, likes, a timeline view) made
// only from Plinth features, and a deterministic seed for benchmarks.
package demo

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/plinthhq/plinth/internal/collections"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb"
)

func ptr(s string) *string { return &s }

func f64(v float64) *float64 { return &v }

// Collections returns the microblog schema in creation order. Relation
// targets are given by name and resolved on save.
func Collections() []*schema.Collection {
	public := ptr("")
	return []*schema.Collection{
		{Name: "users", Type: schema.TypeAuth, ListRule: public, ViewRule: public, CreateRule: public,
			UpdateRule: ptr("id = @request.auth.id"), DeleteRule: ptr("id = @request.auth.id"),
			Fields: []*schema.Field{
				{Name: "name", Type: schema.FieldText, Required: true, Min: f64(1), Max: f64(50)},
				{Name: "handle", Type: schema.FieldText, Required: true, Pattern: `^[a-z0-9_]{3,20}$`},
				{Name: "bio", Type: schema.FieldText, Max: f64(160)},
				{Name: "avatar", Type: schema.FieldFile, MaxSize: 2 << 20, MimeTypes: []string{"image/jpeg", "image/png", "image/gif", "image/webp"}, Thumbs: []string{"100x100"}},
			},
			Indexes: []schema.Index{{Name: "idx_users_handle", Columns: []string{"handle"}, Unique: true}}},
		{Name: "posts", Type: schema.TypeBase, ListRule: public, ViewRule: public,
			CreateRule: ptr(`@request.auth.id != "" && author = @request.auth.id`),
			UpdateRule: ptr("author = @request.auth.id"), DeleteRule: ptr("author = @request.auth.id"),
			Fields: []*schema.Field{
				{Name: "author", Type: schema.FieldRelation, CollectionID: "users", Required: true, CascadeDelete: true},
				{Name: "text", Type: schema.FieldText, Required: true, Min: f64(1), Max: f64(280)},
				{Name: "reply_to", Type: schema.FieldRelation, CollectionID: "posts"},
				{Name: "image", Type: schema.FieldFile, MaxSize: 5 << 20, MimeTypes: []string{"image/jpeg", "image/png", "image/gif", "image/webp"}, Thumbs: []string{"600x0"}},
			},
			Indexes: []schema.Index{
				{Name: "idx_posts_created", Columns: []string{"created"}},
				{Name: "idx_posts_author_created", Columns: []string{"author", "created"}},
			}},
		{Name: "follows", Type: schema.TypeBase, ListRule: public, ViewRule: public,
			CreateRule: ptr(`@request.auth.id != "" && follower = @request.auth.id && followee != follower`),
			DeleteRule: ptr("follower = @request.auth.id"),
			Fields: []*schema.Field{
				{Name: "follower", Type: schema.FieldRelation, CollectionID: "users", Required: true, CascadeDelete: true},
				{Name: "followee", Type: schema.FieldRelation, CollectionID: "users", Required: true, CascadeDelete: true},
			},
			Indexes: []schema.Index{
				{Name: "idx_follows_pair", Columns: []string{"follower", "followee"}, Unique: true},
				{Name: "idx_follows_followee", Columns: []string{"followee"}},
			}},
		{Name: "likes", Type: schema.TypeBase, ListRule: public, ViewRule: public,
			CreateRule: ptr(`@request.auth.id != "" && user = @request.auth.id`),
			DeleteRule: ptr("user = @request.auth.id"),
			Fields: []*schema.Field{
				{Name: "user", Type: schema.FieldRelation, CollectionID: "users", Required: true, CascadeDelete: true},
				{Name: "post", Type: schema.FieldRelation, CollectionID: "posts", Required: true, CascadeDelete: true},
			},
			Indexes: []schema.Index{
				{Name: "idx_likes_pair", Columns: []string{"user", "post"}, Unique: true},
				{Name: "idx_likes_post", Columns: []string{"post"}},
			}},
		{Name: "timeline", Type: schema.TypeView, ListRule: ptr("viewer = @request.auth.id"), ViewRule: ptr("viewer = @request.auth.id"),
			ViewQuery: `SELECT f.id || p.id AS id, f.follower AS viewer, p.id AS post, p.author AS author, p.text AS text, p.image AS image, p.created AS created
				FROM follows f JOIN posts p ON p.author = f.followee`,
			Fields: []*schema.Field{
				{Name: "viewer", Type: schema.FieldRelation, CollectionID: "users"},
				{Name: "post", Type: schema.FieldRelation, CollectionID: "posts"},
				{Name: "author", Type: schema.FieldRelation, CollectionID: "users"},
			}},
	}
}

// Install creates the microblog collections that do not exist yet and
// reports whether the users collection was among them.
func Install(ctx context.Context, app *collections.Service) (fresh bool, err error) {
	fresh = app.Schema().Get("users") == nil
	for _, c := range Collections() {
		if cur := app.Schema().Get(c.Name); cur != nil {
			if c.Name == "users" && cur.Field("handle") == nil {
				// The users collection a new database starts with: it
				// becomes the microblog's (its fields and rules added).
				if err := adoptUsers(ctx, app, cur, c); err != nil {
					return false, fmt.Errorf("extend users: %w", err)
				}
				fresh = true
			}
			continue
		}
		if _, err := app.CreateCollection(ctx, c); err != nil {
			return false, fmt.Errorf("create %s: %w", c.Name, err)
		}
	}
	return fresh, nil
}

// adoptUsers turns the default users collection into the microblog's:
// the demo's fields replace those of the same name, the others are kept,
// and the demo's rules and indexes apply.
func adoptUsers(ctx context.Context, app *collections.Service, cur, demo *schema.Collection) error {
	next := cur.Clone()
	for _, f := range demo.Fields {
		nf := *f
		if old := next.Field(f.Name); old != nil {
			nf.ID = old.ID
			*old = nf
			continue
		}
		next.Fields = append(next.Fields, &nf)
	}
	next.ListRule, next.ViewRule, next.CreateRule, next.UpdateRule, next.DeleteRule =
		demo.ListRule, demo.ViewRule, demo.CreateRule, demo.UpdateRule, demo.DeleteRule
	next.Indexes = append(next.Indexes, demo.Indexes...)
	_, err := app.UpdateCollection(ctx, next)
	return err
}

// SeedOptions size the generated data set.
type SeedOptions struct {
	Users, Posts, Follows, Likes int
	Seed                         uint64
	// Password is shared by every generated user (hashed once: hashing
	// ten thousand distinct passwords would dominate seeding time).
	Password string
}

// DemoPassword is the password of every seeded user.
const DemoPassword = "microblog-demo"

// UserEmail is the email of the i-th seeded user (1-based).
func UserEmail(i int) string { return fmt.Sprintf("user%05d@example.com", i) }

// Seed fills the microblog with deterministic data in large transactions,
// bypassing per-record rules (it runs as the operator, not a client).
// Timestamps spread over the last 30 days so "newest first" is meaningful.
// It is long because it generates each table in turn from one random
// source (the order is what makes the data deterministic).
func Seed(ctx context.Context, app *collections.Service, o SeedOptions) error {
	if o.Password == "" {
		o.Password = DemoPassword
	}
	r := rand.New(rand.NewPCG(o.Seed, o.Seed^0x9e3779b97f4a7c15))
	hash, err := secret.HashPassword(o.Password, secret.DefaultArgon2)
	if err != nil {
		return err
	}
	d := app.DB.Dialect
	now := time.Now().UTC()
	start := now.Add(-30 * 24 * time.Hour)
	span := now.Sub(start)
	id := func(prefix byte, i int) string { return fmt.Sprintf("%c%014d", prefix, i) }
	stamp := func() string { return schema.FormatDate(start.Add(time.Duration(r.Int64N(int64(span))))) }
	words := []string{"hello", "world", "plinth", "go", "sqlite", "postgres", "today", "coffee", "shipping", "bug", "fixed", "release", "benchmark", "fast", "why", "because", "love", "this"}
	sentence := func() string {
		n := 3 + r.IntN(12)
		s := ""
		for i := 0; i < n; i++ {
			if i > 0 {
				s += " "
			}
			s += words[r.IntN(len(words))]
		}
		return s
	}
	insert := func(table string, cols []string, rows int, row func(i int) []any) error {
		const batch = 500
		for lo := 0; lo < rows; lo += batch {
			hi := min(lo+batch, rows)
			err := app.DB.Tx(ctx, func(tx *sql.Tx) error {
				for i := lo; i < hi; i++ {
					b := sqldb.NewBuilder(d)
					q := "INSERT INTO " + d.Quote(table) + " ("
					vals := ""
					for j, c := range cols {
						if j > 0 {
							q += ", "
							vals += ", "
						}
						q += d.Quote(c)
						vals += b.Arg(nil)
					}
					(*b.Args) = row(i)
					if _, err := b.Exec(ctx, tx, q+") VALUES ("+vals+")"); err != nil {
						return err
					}
				}
				return nil
			})
			if err != nil {
				return fmt.Errorf("seed %s: %w", table, err)
			}
		}
		return nil
	}
	ts := func() string { return stamp() }
	err = insert("users", []string{"id", "email", "emailVisibility", "verified", "password", "tokenKey", "name", "handle", "bio", "created", "updated"}, o.Users, func(i int) []any {
		c := ts()
		return []any{id('u', i+1), UserEmail(i + 1), false, true, hash, schema.RandomString(50), fmt.Sprintf("User %d", i+1), fmt.Sprintf("user%05d", i+1), sentence(), c, c}
	})
	if err != nil {
		return err
	}
	err = insert("posts", []string{"id", "author", "text", "reply_to", "created", "updated"}, o.Posts, func(i int) []any {
		c := ts()
		reply := ""
		if i > 10 && r.IntN(10) == 0 {
			reply = id('p', 1+r.IntN(i))
		}
		return []any{id('p', i+1), id('u', 1+r.IntN(o.Users)), sentence(), reply, c, c}
	})
	if err != nil {
		return err
	}
	// Pairs are unique by index, so repeats are drawn again; a failed
	// insert would abort the whole batch on PostgreSQL.
	o.Follows = min(o.Follows, o.Users*(o.Users-1)/2)
	o.Likes = min(o.Likes, o.Users*o.Posts/2)
	seen := map[[2]int]bool{}
	pair := func(prefix byte, n1, n2 int, distinct bool) (int, int) {
		for {
			a, b := 1+r.IntN(n1), 1+r.IntN(n2)
			if (distinct && a == b) || seen[[2]int{int(prefix)<<40 | a, b}] {
				continue
			}
			seen[[2]int{int(prefix)<<40 | a, b}] = true
			return a, b
		}
	}
	err = insert("follows", []string{"id", "follower", "followee", "created", "updated"}, o.Follows, func(i int) []any {
		a, b := pair('f', o.Users, o.Users, true)
		c := ts()
		return []any{id('f', i+1), id('u', a), id('u', b), c, c}
	})
	if err != nil {
		return err
	}
	return insert("likes", []string{"id", "user", "post", "created", "updated"}, o.Likes, func(i int) []any {
		u, p := pair('l', o.Users, o.Posts, false)
		c := ts()
		return []any{id('l', i+1), id('u', u), id('p', p), c, c}
	})
}
