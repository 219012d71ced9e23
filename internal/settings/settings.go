// Package settings holds the application settings superusers edit at
// runtime (app URL, SMTP, email templates). They are stored in the
// database, not in a file, so every node of a cluster reads the same.
package settings

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/url"

	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Settings are the editable application settings.
type Settings struct {
	AppName string `json:"appName"`
	// AppURL is the public address of the app; links in emails use it.
	AppURL    string                   `json:"appURL"`
	SMTP      mail.SMTP                `json:"smtp"`
	Sender    Sender                   `json:"sender"`
	Templates map[string]mail.Template `json:"templates"`
}

// Sender is the From of outgoing mail.
type Sender struct {
	Name    string `json:"name"`
	Address string `json:"address"`
}

// Template returns the template for name, the default when not edited.
func (s *Settings) Template(name string) mail.Template {
	if t, ok := s.Templates[name]; ok && t.Subject != "" {
		return t
	}
	return mail.Defaults[name]
}

const key = "settings"

// Load reads the settings, with defaults for what was never set.
func Load(ctx context.Context, db *sqldb.DB) (*Settings, error) {
	s := &Settings{AppName: "Plinth", AppURL: "http://127.0.0.1:8090", Templates: map[string]mail.Template{}}
	b := sqldb.NewBuilder(db.Dialect)
	var raw string
	err := b.QueryRow(ctx, db.Read, "SELECT value FROM _meta WHERE key = "+b.Arg(key)).Scan(&raw)
	switch {
	case err == nil:
		if err := json.Unmarshal([]byte(raw), s); err != nil {
			return nil, err
		}
	case !errors.Is(err, sql.ErrNoRows):
		return nil, err
	}
	if s.Templates == nil {
		s.Templates = map[string]mail.Template{}
	}
	return s, nil
}

// Save validates and stores s.
func Save(ctx context.Context, db *sqldb.DB, s *Settings) error {
	if u, err := url.Parse(s.AppURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return errors.New("appURL must be an http(s) URL")
	}
	switch s.SMTP.TLS {
	case "", "starttls", "tls", "none":
	default:
		return errors.New(`smtp.tls must be "starttls", "tls" or "none"`)
	}
	for name, t := range s.Templates {
		if _, ok := mail.Defaults[name]; !ok {
			return errors.New("unknown template " + name)
		}
		if _, _, _, err := t.Render(mail.Data{}); err != nil {
			return errors.New("template " + name + ": " + err.Error())
		}
	}
	raw, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return db.Tx(ctx, func(tx *sql.Tx) error {
		b := sqldb.NewBuilder(db.Dialect)
		res, err := b.Exec(ctx, tx, "UPDATE _meta SET value = "+b.Arg(string(raw))+" WHERE key = "+b.Arg(key))
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			b := sqldb.NewBuilder(db.Dialect)
			_, err = b.Exec(ctx, tx, "INSERT INTO _meta (key, value) VALUES ("+b.Arg(key)+", "+b.Arg(string(raw))+")")
		}
		return err
	})
}
