// Package identity is who a caller is: passwords, tokens, sessions,
// one-time codes, multi-factor logins, OAuth2 sign-in and linking, the
// email flows (verification, password reset, email change) and their
// HTTP endpoints. Auth records are ordinary records; this package reads
// and writes them through the records service.
package identity

import (
	"log/slog"

	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// Service authenticates callers and runs the auth flows.
type Service struct {
	Records *records.Service
	DB      *sqldb.DB
	// Schema returns the current collections snapshot.
	Schema func() *schema.Snapshot
	// Argon2 tunes password hashing.
	Argon2 secret.Argon2Params
	// Log receives warnings about external services (may be nil).
	Log *slog.Logger
	// Mail queues the email flows' messages (set by RegisterMailJobs).
	Mail *mail.Queue
	// Revoked, when set, hears of revoked sessions and tokens (logout
	// everywhere, a session ended), so open realtime connections are
	// re-checked at once.
	Revoked func(collectionID, recordID string)
	// ServedURL, when set, returns the address this node serves
	// (http://host:port): email links point there while the settings
	// name no appURL.
	ServedURL func() string
}

// revoked reports a revocation to Revoked.
func (s *Service) revoked(collectionID, recordID string) {
	if s.Revoked != nil {
		s.Revoked(collectionID, recordID)
	}
}

// New returns the identity service over recs.
func New(recs *records.Service, log *slog.Logger) *Service {
	return &Service{Records: recs, DB: recs.DB, Schema: recs.Schema, Argon2: recs.Argon2, Log: log}
}
