package server

import (
	"context"

	"github.com/plinthhq/plinth/internal/files"
	"github.com/plinthhq/plinth/internal/identity"
	"github.com/plinthhq/plinth/internal/openapi"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/web"
)

// route is one line of the route table.
type route struct {
	pattern string
	handler web.Handler
}

// routes is the route table: every endpoint Plinth serves, in one place.
// Handlers live with their feature; "superuser" marks the endpoints only
// superusers may call.
func (s *Server) routes() []route {
	cols := s.deps.Collections
	recs := &records.Handlers{Records: cols.Records, Schema: cols, Files: cols.Records.Files, BatchMax: s.opts.BatchMaxRequests}
	auth := &identity.Handlers{Identity: s.deps.Identity, Schema: cols, TrustedProxies: s.opts.TrustedProxies,
		PerIP: rateLimiter(s.opts.AuthRatePerIP, 60), PerAccount: rateLimiter(s.opts.AuthRatePerAccount, 10)}
	fileHandlers := &files.Handlers{Storage: cols.Records.Files, Thumbs: files.NewThumbnailer(s.opts.ThumbMemory),
		Access: fileAccess{cols: cols, id: s.deps.Identity}}
	st := &settings.Handlers{DB: cols.DB, Runtime: s.opts.Runtime, Storage: cols.Records.Files, Saved: func(ctx context.Context, _ *settings.Settings) {
		if q := s.deps.Identity.Mail; q != nil {
			if err := q.RetryNow(ctx); err != nil {
				s.log.Warn("mail queue: cannot reschedule after a settings change", "err", err)
			}
		}
	}}
	const c = "/api/collections/{collection}"
	table := []route{
		{"GET /api/health", s.health},
		{"GET /api/openapi.json", openapi.Handler(cols.Schema, openapi.Options{Realtime: s.deps.Realtime != nil, Webhooks: s.deps.Webhooks != nil})},

		{"GET /api/collections", superuser(cols.HandleList)},
		{"POST /api/collections/validate", superuser(cols.HandleValidate)},
		{"POST /api/collections", superuser(cols.HandleCreate)},
		{"PUT /api/collections/import", superuser(cols.HandleImport)},
		{"GET " + c, superuser(cols.HandleView)},
		{"PATCH " + c, superuser(cols.HandleUpdate)},
		{"DELETE " + c, superuser(cols.HandleDelete)},

		{"GET " + c + "/records", recs.List},
		{"POST " + c + "/records", recs.Create},
		{"GET " + c + "/records/{id}", recs.View},
		{"PATCH " + c + "/records/{id}", recs.Update},
		{"DELETE " + c + "/records/{id}", recs.Delete},
		{"POST /api/batch", recs.Batch},

		{"POST /api/superusers/auth-with-password", auth.SuperuserAuth},
		{"POST " + c + "/auth-with-password", auth.AuthWithPassword},
		{"POST " + c + "/auth-refresh", auth.AuthRefresh},
		{"GET " + c + "/auth-methods", auth.AuthMethods},
		{"POST " + c + "/request-otp", auth.RequestOTP},
		{"POST " + c + "/auth-with-otp", auth.AuthWithOTP},
		{"POST " + c + "/auth-with-oauth2", auth.AuthWithOAuth2},
		{"POST " + c + "/impersonate/{id}", superuser(auth.Impersonate)},
		{"POST " + c + "/request-verification", auth.RequestVerification()},
		{"POST " + c + "/confirm-verification", auth.ConfirmVerification()},
		{"POST " + c + "/request-password-reset", auth.RequestPasswordReset()},
		{"POST " + c + "/confirm-password-reset", auth.ConfirmPasswordReset()},
		{"POST " + c + "/request-email-change", auth.RequestEmailChange()},
		{"POST " + c + "/confirm-email-change", auth.ConfirmEmailChange()},
		{"POST " + c + "/logout-all", auth.LogoutAll},
		{"GET " + c + "/sessions", auth.ListSessions},
		{"DELETE " + c + "/sessions/{sid}", auth.RevokeSession},

		{"GET /api/settings", superuser(st.Get)},
		{"GET /api/settings/public", st.Public},
		{"GET /api/settings/runtime", superuser(st.HandleRuntime)},
		{"POST /api/settings/test/storage", superuser(st.HandleTestStorage)},
		{"PATCH /api/settings", superuser(st.Patch)},

		{"GET /api/files/{collection}/{record}/{filename}", fileHandlers.Serve},
		{"POST /api/files/token", auth.FileToken},

		{"/api/", notFound},
	}
	if rt := s.deps.Realtime; rt != nil {
		table = append(table,
			route{"GET /api/realtime", rt.HandleSSE},
			route{"POST /api/realtime", rt.HandleSubscribe},
			route{"GET /api/realtime/ws", rt.HandleWS},
		)
	}
	if wh := s.deps.Webhooks; wh != nil {
		table = append(table,
			route{"GET /api/webhooks", superuser(wh.HandleList)},
			route{"POST /api/webhooks", superuser(wh.HandleCreate)},
			route{"GET /api/webhooks/{id}", superuser(wh.HandleView)},
			route{"PATCH /api/webhooks/{id}", superuser(wh.HandleUpdate)},
			route{"DELETE /api/webhooks/{id}", superuser(wh.HandleDelete)},
			route{"GET /api/webhooks/{id}/deliveries", superuser(wh.HandleDeliveries)},
			route{"POST /api/webhooks/{id}/deliveries/{delivery}/retry", superuser(wh.HandleRetry)},
		)
	}
	if d := s.deps.Dashboard; d != nil {
		table = append(table,
			route{"GET /_", d.Assets.Redirect},
			route{"GET /_/", d.Assets.Serve},
			route{"POST /api/superusers/install", d.Installer.Install},
			route{"POST /api/settings/test/email", superuser(d.Mailer.TestEmail)},
			route{"POST /api/settings/email/preview", superuser(d.Mailer.Preview)},
		)
	}
	return table
}
