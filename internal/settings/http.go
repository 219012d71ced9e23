package settings

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/sqldb"
	"github.com/plinthhq/plinth/internal/web"
)

// Handlers serve /api/settings (superusers).
type Handlers struct {
	DB *sqldb.DB
	// Saved, when set, runs after settings are saved (the mail queue
	// retries at once with new SMTP settings).
	Saved func(ctx context.Context, st *Settings)
	// Runtime is shown read-only by HandleRuntime.
	Runtime Runtime
	// Storage is the file storage HandleTestStorage probes.
	Storage files.Storage
}

// redact hides the SMTP password: it can be set, never read back.
func redact(st *Settings) *Settings {
	st.SMTP.Password = ""
	return st
}

// Get answers GET /api/settings.
func (h *Handlers) Get(w http.ResponseWriter, r *http.Request) error {
	st, err := Load(r.Context(), h.DB)
	if err != nil {
		return apierr.Internal(err)
	}
	return web.JSON(w, http.StatusOK, redact(st))
}

// Public answers GET /api/settings/public: what anyone may know of the
// settings (the app's name, for pages like the emailed links' that show
// the app's branding to people not signed in).
func (h *Handlers) Public(w http.ResponseWriter, r *http.Request) error {
	st, err := Load(r.Context(), h.DB)
	if err != nil {
		return err
	}
	return web.JSON(w, http.StatusOK, map[string]string{"appName": st.AppName})
}

// Patch answers PATCH /api/settings: fields present replace the stored
// ones; an omitted SMTP password keeps the stored one.
func (h *Handlers) Patch(w http.ResponseWriter, r *http.Request) error {
	raw, err := web.ReadJSON(r)
	if err != nil {
		return err
	}
	st, err := Load(r.Context(), h.DB)
	if err != nil {
		return apierr.Internal(err)
	}
	keepPassword := st.SMTP.Password
	if err := json.Unmarshal(raw, st); err != nil {
		return apierr.BadRequest("Invalid settings: " + err.Error())
	}
	if st.SMTP.Password == "" {
		st.SMTP.Password = keepPassword
	}
	if err := Save(r.Context(), h.DB, st); err != nil {
		return apierr.BadRequest("Invalid settings.").With("settings", "validation_invalid_settings", err.Error())
	}
	if h.Saved != nil {
		h.Saved(r.Context(), st)
	}
	return web.JSON(w, http.StatusOK, redact(st))
}
