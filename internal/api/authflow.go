package api

import (
	"encoding/json"
	"net/http"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/settings"
)

// authFlow wraps the email-flow endpoints: an auth collection, a JSON
// body, the auth rate limits keyed by the address concerned, 204 on
// success.
func (s *Server) authFlow(limitKey string, fn func(r *http.Request, body map[string]any) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, body, ok := s.authRequest(w, r)
		if !ok {
			return
		}
		key, _ := body[limitKey].(string)
		if !s.limitAuth(w, r, c.ID+"/"+limitKey, key) {
			return
		}
		if err := fn(r, body); err != nil {
			s.fail(w, r, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}
}

func str(body map[string]any, k string) string { v, _ := body[k].(string); return v }

func (s *Server) authFlowRoutes() {
	rec := s.app.Records
	coll := func(r *http.Request) *schema.Collection { return s.app.Schema().Get(r.PathValue("collection")) }
	m := s.mux
	m.HandleFunc("POST /api/collections/{collection}/request-verification", s.authFlow("email", func(r *http.Request, b map[string]any) error {
		return rec.RequestVerification(r.Context(), coll(r), str(b, "email"))
	}))
	m.HandleFunc("POST /api/collections/{collection}/confirm-verification", s.authFlow("token", func(r *http.Request, b map[string]any) error {
		return rec.ConfirmVerification(r.Context(), coll(r), str(b, "token"))
	}))
	m.HandleFunc("POST /api/collections/{collection}/request-password-reset", s.authFlow("email", func(r *http.Request, b map[string]any) error {
		return rec.RequestPasswordReset(r.Context(), coll(r), str(b, "email"))
	}))
	m.HandleFunc("POST /api/collections/{collection}/confirm-password-reset", s.authFlow("token", func(r *http.Request, b map[string]any) error {
		return rec.ConfirmPasswordReset(r.Context(), coll(r), str(b, "token"), str(b, "password"), str(b, "passwordConfirm"))
	}))
	m.HandleFunc("POST /api/collections/{collection}/request-email-change", s.authFlow("newEmail", func(r *http.Request, b map[string]any) error {
		return rec.RequestEmailChange(r.Context(), callerOf(r), coll(r), str(b, "newEmail"))
	}))
	m.HandleFunc("POST /api/collections/{collection}/confirm-email-change", s.authFlow("token", func(r *http.Request, b map[string]any) error {
		return rec.ConfirmEmailChange(r.Context(), coll(r), str(b, "token"), str(b, "password"))
	}))
	m.HandleFunc("POST /api/collections/{collection}/logout-all", func(w http.ResponseWriter, r *http.Request) {
		caller := callerOf(r)
		c := s.app.Schema().Get(r.PathValue("collection"))
		if c == nil || caller.Auth == nil || caller.AuthCollection.ID != c.ID {
			s.fail(w, r, apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection."))
			return
		}
		if err := rec.RotateTokenKey(r.Context(), c, caller.Auth.ID()); err != nil {
			s.fail(w, r, apierr.Internal(err))
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	m.HandleFunc("GET /api/collections/{collection}/sessions", s.listSessions)
	m.HandleFunc("DELETE /api/collections/{collection}/sessions/{sid}", s.revokeSession)
	m.HandleFunc("GET /api/settings", s.superuser(s.getSettings))
	m.HandleFunc("PATCH /api/settings", s.superuser(s.patchSettings))
}

func (s *Server) getSettings(w http.ResponseWriter, r *http.Request) {
	st, err := settings.Load(r.Context(), s.app.DB)
	if err != nil {
		s.fail(w, r, apierr.Internal(err))
		return
	}
	redact(st)
	writeJSON(w, http.StatusOK, st)
}

// redact hides the SMTP password: it can be set, never read back.
func redact(st *settings.Settings) {
	if st.SMTP.Password != "" {
		st.SMTP.Password = ""
	}
}

func (s *Server) patchSettings(w http.ResponseWriter, r *http.Request) {
	raw, err := s.readBody(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := settings.Load(r.Context(), s.app.DB)
	if err != nil {
		s.fail(w, r, apierr.Internal(err))
		return
	}
	keepPassword := st.SMTP.Password
	if err := json.Unmarshal(raw, st); err != nil {
		s.fail(w, r, apierr.BadRequest("Invalid settings: "+err.Error()))
		return
	}
	if st.SMTP.Password == "" {
		st.SMTP.Password = keepPassword // omitted means unchanged
	}
	if err := settings.Save(r.Context(), s.app.DB, st); err != nil {
		s.fail(w, r, apierr.BadRequest("Invalid settings.").With("settings", "validation_invalid_settings", err.Error()))
		return
	}
	redact(st)
	writeJSON(w, http.StatusOK, st)
}
