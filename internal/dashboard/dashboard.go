// Package dashboard serves the admin dashboard at /_/ (the built UI
// embedded in the binary, under a strict Content-Security-Policy) and the
// few endpoints only the dashboard's flows need: creating the first
// superuser from a one-time install link, and sending a test email. The
// dashboard itself is a plain API client: everything else it does goes
// through the public API.
package dashboard

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"net/mail"
	"path"
	"strings"
	"sync"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/collections"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/web"

	plmail "github.com/plinthhq/plinth/internal/mail"
)

// CSP is the Content-Security-Policy of every dashboard response: only
// the binary's own scripts and styles, no inline code, no framing, and
// requests only to this origin.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"

// asset is one embedded file, read once with its validator.
type asset struct {
	body  []byte
	etag  string
	ctype string
}

// Assets serves the built dashboard files at /_/.
type Assets struct {
	files map[string]asset
}

// NewAssets reads every file of fsys (the built UI) into memory and
// computes its ETag; the dashboard is small, and serving from memory
// keeps every response a single write.
func NewAssets(fsys fs.FS) (*Assets, error) {
	a := &Assets{files: map[string]asset{}}
	err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		ct := mime.TypeByExtension(path.Ext(p))
		if ct == "" {
			ct = http.DetectContentType(b)
		}
		a.files[p] = asset{body: b, etag: `"` + hex.EncodeToString(sum[:12]) + `"`, ctype: ct}
		return nil
	})
	return a, err
}

// Redirect answers GET /_ with a redirect to /_/, where relative asset
// paths resolve.
func (a *Assets) Redirect(w http.ResponseWriter, r *http.Request) error {
	http.Redirect(w, r, "/_/", http.StatusMovedPermanently)
	return nil
}

// Serve answers GET /_/...: index.html must be revalidated on every load
// (it names the current build's assets); files under assets/ carry a
// content hash in their name and are cached for a year. Every answer,
// errors included, carries the CSP and refuses framing.
func (a *Assets) Serve(w http.ResponseWriter, r *http.Request) error {
	h := w.Header()
	h.Set("Content-Security-Policy", CSP)
	h.Set("X-Frame-Options", "DENY")
	name := strings.TrimPrefix(r.URL.Path, "/_/")
	if name == "" {
		name = "index.html"
	}
	f, ok := a.files[name]
	if !ok || strings.Contains(name, "..") {
		return apierr.NotFound("The requested resource wasn't found.")
	}
	if strings.HasPrefix(name, "assets/") {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	h.Set("ETag", f.etag)
	h.Set("Content-Type", f.ctype)
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.body))
	return nil
}

// InstallTTL is how long a first-superuser install link stays valid.
const InstallTTL = 30 * time.Minute

// Installer holds this node's one-time install token: printed by `plinth
// serve` while no superuser exists, it lets one person create the first
// superuser from the browser. It is kept in memory only, so a restart
// (which prints a new link) invalidates the old one.
type Installer struct {
	Collections *collections.Service

	mu      sync.Mutex
	hash    [32]byte // sha256 of the token; zero when none is live
	expires time.Time
}

// superuserCount counts superusers.
func (in *Installer) superuserCount(ctx context.Context) (int, error) {
	db := in.Collections.DB
	b := sqldb.NewBuilder(db.Dialect)
	var n int
	err := b.QueryRow(ctx, db.Read, "SELECT COUNT(*) FROM "+db.Dialect.Quote(schema.SuperusersName)).Scan(&n)
	return n, err
}

// Issue returns a fresh single-use token valid for InstallTTL, replacing
// any earlier one, or "" when a superuser already exists.
func (in *Installer) Issue(ctx context.Context) (string, error) {
	n, err := in.superuserCount(ctx)
	if err != nil || n > 0 {
		return "", err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", err
	}
	tok := hex.EncodeToString(raw)
	in.mu.Lock()
	defer in.mu.Unlock()
	in.hash, in.expires = sha256.Sum256([]byte(tok)), time.Now().Add(InstallTTL)
	return tok, nil
}

// Install answers POST /api/superusers/install {token, email, password}:
// with the live install token it creates the first superuser; once any
// superuser exists it is refused. The token is compared in constant time
// (as hashes, so its length leaks nothing either) and is spent by the
// first success; a refused password leaves it usable for another try.
func (in *Installer) Install(w http.ResponseWriter, r *http.Request) error {
	body, err := web.DecodeObject(r)
	if err != nil {
		return err
	}
	tok, email, password := web.Str(body, "token"), web.Str(body, "email"), web.Str(body, "password")
	in.mu.Lock()
	defer in.mu.Unlock() // one install at a time: two racing requests cannot both succeed
	got := sha256.Sum256([]byte(tok))
	var zero [32]byte
	if in.hash == zero || time.Now().After(in.expires) || subtle.ConstantTimeCompare(got[:], in.hash[:]) != 1 {
		return apierr.BadRequest("Invalid or expired install link.").With("token", "validation_invalid_token",
			"The install link is invalid or has expired; restart plinth serve for a new one.")
	}
	n, err := in.superuserCount(r.Context())
	if err != nil {
		return unavailable(err)
	}
	if n > 0 {
		in.hash = zero
		return apierr.BadRequest("A superuser already exists.").With("token", "validation_already_installed", "A superuser already exists; log in instead.")
	}
	if _, err := mail.ParseAddress(email); err != nil || !strings.Contains(email, "@") {
		return apierr.BadRequest("Invalid email.").With("email", "validation_invalid_email", "Must be a valid email address.")
	}
	if err := in.Collections.UpsertSuperuser(r.Context(), email, password); err != nil {
		return err
	}
	in.hash = zero
	return web.NoContent(w)
}

// Mailer sends test emails with the configured SMTP settings.
type Mailer struct {
	DB *sqldb.DB
	// ServedURL is the address this node serves, for the sample link when
	// no appURL is set.
	ServedURL func() string
}

// TestEmail answers POST /api/settings/test/email {to, template?}
// (superusers): it renders the named template ("verification" by
// default; "passwordReset", "emailChange", "otp") with sample values and
// delivers it at once through the configured SMTP server, answering the
// server's error as a 400 so the settings page can show what is wrong.
func (m *Mailer) TestEmail(w http.ResponseWriter, r *http.Request) error {
	body, err := web.DecodeObject(r)
	if err != nil {
		return err
	}
	to, name := strings.TrimSpace(web.Str(body, "to")), web.Str(body, "template")
	if name == "" {
		name = "verification"
	}
	if a, err := mail.ParseAddress(to); err != nil || a.Address != to || len(to) > 254 {
		return apierr.BadRequest("Invalid email.").With("to", "validation_invalid_email", "Must be a valid email address.")
	}
	if _, ok := plmail.Defaults[name]; !ok {
		return apierr.BadRequest("Unknown template.").With("template", "validation_unknown_template",
			"Must be one of verification, passwordReset, emailChange, otp.")
	}
	st, err := settings.Load(r.Context(), m.DB)
	if err != nil {
		return unavailable(err)
	}
	if st.SMTP.Host == "" {
		return apierr.BadRequest("Email delivery is not configured: set SMTP in the settings first.")
	}
	subject, html, text, err := m.render(st, name, st.Template(name), to)
	if err != nil {
		return apierr.BadRequest("The template does not render: " + err.Error())
	}
	from := st.Sender.Address
	if from == "" {
		from = "no-reply@localhost"
	}
	ctx, cancel := context.WithTimeout(r.Context(), 20*time.Second)
	defer cancel()
	msg := plmail.Message{FromName: st.Sender.Name, From: from, To: to, Subject: "[test] " + subject, HTML: html, Text: text}
	if err := plmail.Send(ctx, st.SMTP, msg); err != nil {
		return apierr.BadRequest("Sending failed: "+err.Error()).With("smtp", "smtp_failed", err.Error())
	}
	return web.NoContent(w)
}

// render fills template t (named name) with sample values for to: the
// link a real email of that kind would carry, with a placeholder token.
func (m *Mailer) render(st *settings.Settings, name string, t plmail.Template, to string) (subject, html, text string, err error) {
	served := ""
	if m.ServedURL != nil {
		served = m.ServedURL()
	}
	action := map[string]string{"verification": "confirm-verification", "passwordReset": "confirm-password-reset", "emailChange": "confirm-email-change"}[name]
	data := plmail.Data{AppName: st.AppName, AppURL: st.BaseURL(served), Email: to, Token: "test-token", Code: "123456"}
	if action != "" {
		data.Link = st.Link(served, action, "users", "test-token")
	}
	return t.Render(data)
}

// Preview answers POST /api/settings/email/preview {template, subject?,
// html?, text?} (superusers): the template — the saved one, or the draft
// given in the body — rendered with sample values, nothing sent, so the
// template editor can show the result before saving.
func (m *Mailer) Preview(w http.ResponseWriter, r *http.Request) error {
	body, err := web.DecodeObject(r)
	if err != nil {
		return err
	}
	name := web.Str(body, "template")
	if _, ok := plmail.Defaults[name]; !ok {
		return apierr.BadRequest("Unknown template.").With("template", "validation_unknown_template",
			"Must be one of verification, passwordReset, emailChange, otp.")
	}
	st, err := settings.Load(r.Context(), m.DB)
	if err != nil {
		return unavailable(err)
	}
	t := st.Template(name)
	if web.Str(body, "subject") != "" {
		t = plmail.Template{Subject: web.Str(body, "subject"), HTML: web.Str(body, "html"), Text: web.Str(body, "text")}
	}
	subject, html, text, err := m.render(st, name, t, "someone@example.com")
	if err != nil {
		return apierr.BadRequest("The template does not render.").With("template", "validation_invalid_template", err.Error())
	}
	return web.JSON(w, http.StatusOK, map[string]string{"subject": subject, "html": html, "text": text})
}

// unavailable is database trouble: a 503 the client may retry, the cause
// logged at the error edge.
func unavailable(err error) error {
	e := apierr.New(http.StatusServiceUnavailable, "The database is not available; try again.")
	e.Cause = err
	return e
}

// Dashboard is what the server mounts: the UI files and the endpoints of
// the dashboard's own flows.
type Dashboard struct {
	Assets    *Assets
	Installer *Installer
	Mailer    *Mailer
}

// New builds the dashboard over the built UI files ui.
func New(ui fs.FS, cols *collections.Service, servedURL func() string) (*Dashboard, error) {
	assets, err := NewAssets(ui)
	if err != nil {
		return nil, err
	}
	return &Dashboard{Assets: assets, Installer: &Installer{Collections: cols}, Mailer: &Mailer{DB: cols.DB, ServedURL: servedURL}}, nil
}
