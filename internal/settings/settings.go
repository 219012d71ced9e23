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
	"strings"

	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Settings are the editable application settings.
type Settings struct {
	AppName string `json:"appName"`
	// AppURL is the public address of the app; links in emails use it.
	// Empty means the address this node actually serves (see BaseURL).
	AppURL string `json:"appURL"`
	// AuthLinkURL, when set, replaces the links mailed by the email flows
	// (verification, password reset, email change) for apps that handle
	// them on their own pages: "{action}", "{collection}" and "{token}"
	// are replaced. Empty: the dashboard's confirmation pages,
	// {appURL}/_/#/auth/{action}/{token}.
	AuthLinkURL string                   `json:"authLinkURL"`
	SMTP        mail.SMTP                `json:"smtp"`
	Sender      Sender                   `json:"sender"`
	Templates   map[string]mail.Template `json:"templates"`
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

// httpURL reports whether u is an absolute http(s) URL (or empty, when
// allowed). Placeholders such as {token} are allowed in the path.
func httpURL(u string, emptyOK bool) bool {
	if u == "" {
		return emptyOK
	}
	p, err := url.Parse(strings.NewReplacer("{", "", "}", "").Replace(u))
	return err == nil && (p.Scheme == "http" || p.Scheme == "https") && p.Host != ""
}

// BaseURL is AppURL, or served (the address this node listens on) when
// no appURL was set, without a trailing slash.
func (s *Settings) BaseURL(served string) string {
	if s.AppURL != "" {
		return strings.TrimRight(s.AppURL, "/")
	}
	return strings.TrimRight(served, "/")
}

// Link is the URL mailed for an email flow: AuthLinkURL with its
// placeholders filled, or by default the dashboard's confirmation page
// {appURL}/_/#/auth/{action}/{token} (the page reads the collection from
// the token). action is "confirm-verification", "confirm-password-reset"
// or "confirm-email-change".
func (s *Settings) Link(served, action, collection, token string) string {
	if s.AuthLinkURL != "" {
		return strings.NewReplacer("{action}", url.PathEscape(action), "{collection}", url.QueryEscape(collection),
			"{token}", url.QueryEscape(token)).Replace(s.AuthLinkURL)
	}
	return s.BaseURL(served) + "/_/#/auth/" + url.PathEscape(action) + "/" + url.PathEscape(token)
}

// Load reads the settings, with defaults for what was never set.
func Load(ctx context.Context, db *sqldb.DB) (*Settings, error) {
	s := &Settings{AppName: "Plinth", Templates: map[string]mail.Template{}}
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
	if !httpURL(s.AppURL, true) {
		return errors.New("appURL must be an http(s) URL (or empty for the served address)")
	}
	if !httpURL(s.AuthLinkURL, true) || (s.AuthLinkURL != "" && !strings.Contains(s.AuthLinkURL, "{token}")) {
		return errors.New("authLinkURL must be an http(s) URL containing {token} (or empty for the dashboard's pages)")
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
