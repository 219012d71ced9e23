package collections

import (
	"reflect"
	"testing"

	"github.com/plinthhq/plinth/internal/schema"
)

func TestParseIndexSQL(t *testing.T) {
	tests := []struct {
		stmt    string
		want    schema.Index
		wantErr bool
	}{
		{"CREATE UNIQUE INDEX `idx_slug` ON `posts` (`slug`)", schema.Index{Name: "idx_slug", Columns: []string{"slug"}, Unique: true}, false},
		{"create index idx_a on posts (author, created DESC)", schema.Index{Name: "idx_a", Columns: []string{"author", "created"}}, false},
		{`CREATE INDEX IF NOT EXISTS "ix" ON "posts" ("title" COLLATE NOCASE ASC);`, schema.Index{Name: "ix", Columns: []string{"title"}}, false},
		{"CREATE UNIQUE INDEX `idx_email` ON `posts` (`email`) WHERE `email` != ''", schema.Index{Name: "idx_email", Columns: []string{"email"}, Unique: true}, false},
		{"CREATE INDEX ix ON posts (lower(title))", schema.Index{}, true},
		{"CREATE INDEX ix ON other (title)", schema.Index{}, true},
		{"CREATE INDEX ix ON posts (title) WHERE views > 3", schema.Index{}, true},
		{"CREATE INDEX ix ON posts (a, b) WHERE a != ''", schema.Index{}, true},
		{"CREATE INDEX ix ON posts (title); DROP TABLE posts", schema.Index{}, true},
		{"DROP TABLE posts", schema.Index{}, true},
		{"CREATE INDEX ix ON posts ()", schema.Index{}, true},
	}
	for _, tc := range tests {
		got, err := ParseIndexSQL(tc.stmt, "posts")
		if (err != nil) != tc.wantErr {
			t.Errorf("%q: err = %v, want error %v", tc.stmt, err, tc.wantErr)
			continue
		}
		if !tc.wantErr && !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v, want %+v", tc.stmt, got, tc.want)
		}
	}
}
