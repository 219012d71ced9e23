package identity

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/identity/oauth"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// OAuthClient makes the server's calls to providers.
var OAuthClient = &http.Client{Timeout: 15 * time.Second}

func providerConfig(c *schema.Collection, name string) (oauth.Config, bool) {
	if !c.Auth.OAuth2.Enabled {
		return oauth.Config{}, false
	}
	for _, p := range c.Auth.OAuth2.Providers {
		if p.Name == name {
			return oauth.Config(p), true
		}
	}
	return oauth.Config{}, false
}

// OAuth2Methods prepares a login with each enabled provider.
func (s *Service) OAuth2Methods(ctx context.Context, c *schema.Collection) ([]oauth.Method, error) {
	out := []oauth.Method{} // never null: clients map over it
	if !c.Auth.OAuth2.Enabled {
		return out, nil
	}
	for _, p := range c.Auth.OAuth2.Providers {
		m, err := oauth.Config(p).Start(ctx, OAuthClient)
		if err != nil {
			s.logWarn("oauth2 provider unavailable", "provider", p.Name, "err", err)
			continue
		}
		out = append(out, m)
	}
	return out, nil
}

func (s *Service) logWarn(msg string, args ...any) {
	if s.Log != nil {
		s.Log.Warn(msg, args...)
	}
}

// AuthWithOAuth2 completes a provider login: exchange the code (with the
// PKCE verifier), then find the record linked to that external identity;
// or link it to the caller's own record, or to the record with the same
// email when the provider vouches for the address; or create a record.
// It returns the record with its token key, ready for the MFA step.
func (s *Service) AuthWithOAuth2(ctx context.Context, caller *records.Caller, c *schema.Collection, provider, code, verifier, redirect string, createData map[string]any) (*records.Record, error) {
	cfg, ok := providerConfig(c, provider)
	if !ok {
		return nil, apierr.BadRequest("Unknown or disabled provider.").With("provider", "validation_invalid_provider", "Unknown or disabled provider.")
	}
	user, err := cfg.Exchange(ctx, OAuthClient, code, verifier, redirect)
	if err != nil {
		e := apierr.BadRequest("Failed to authenticate with the provider.")
		e.Cause = err
		return nil, e
	}
	d := s.DB.Dialect
	b := sqldb.NewBuilder(d)
	var recID string
	err = b.QueryRow(ctx, s.DB.Read, "SELECT record FROM _externalAuths WHERE collection = "+b.Arg(c.ID)+" AND provider = "+b.Arg(provider)+" AND providerId = "+b.Arg(user.ID)).Scan(&recID)
	switch {
	case err == nil:
		r, err := s.Records.FindAuth(ctx, c, "id", recID)
		if err != nil || r != nil {
			return r, err
		}
		// The linked record is gone: drop the stale link and carry on.
		b := sqldb.NewBuilder(d)
		b.Exec(ctx, s.DB.Write, "DELETE FROM _externalAuths WHERE collection = "+b.Arg(c.ID)+" AND record = "+b.Arg(recID))
	case !errors.Is(err, sql.ErrNoRows):
		return nil, apierr.Internal(err)
	}
	var r *records.Record
	err = nil // no link yet: decide below whom to link
	switch {
	case caller != nil && caller.Auth != nil && caller.AuthCollection.ID == c.ID:
		r, err = s.Records.FindAuth(ctx, c, "id", caller.Auth.ID())
	case user.Email != "" && user.EmailVerified:
		r, err = s.Records.FindAuth(ctx, c, "email", user.Email)
	}
	if err != nil {
		return nil, err
	}
	if r != nil && r.Values["verified"] != true && (caller == nil || caller.Auth == nil || caller.Auth.ID() != r.ID()) {
		if r, err = s.takeOverUnverified(ctx, c, r); err != nil {
			return nil, err
		}
	}
	if r == nil {
		if r, err = s.oauth2SignUp(ctx, caller, c, user.Email, user.EmailVerified, createData); err != nil {
			return nil, err
		}
	}
	b = sqldb.NewBuilder(d)
	if _, err := b.Exec(ctx, s.DB.Write, "INSERT INTO _externalAuths (id, collection, record, provider, providerId, created) VALUES ("+
		b.Arg(schema.NewID())+", "+b.Arg(c.ID)+", "+b.Arg(r.ID())+", "+b.Arg(provider)+", "+b.Arg(user.ID)+", "+b.Arg(schema.FormatDate(time.Now()))+")"); err != nil {
		if _, dup := d.UniqueViolation(err); !dup {
			return nil, apierr.Internal(err)
		}
	}
	return r, nil
}

// takeOverUnverified hands an unverified record to the person the
// provider vouches for. Anyone can sign up with someone else's address
// and a password of their choosing and wait for the owner to arrive with
// OAuth2 (account pre-hijacking). The provider has just proven who owns
// the address, so the record is theirs: in one transaction its password
// is replaced by an unusable random one, its token key rotated (every
// token and session issued so far dies) and it is marked verified. The
// owner can set a password of their own with a password reset.
func (s *Service) takeOverUnverified(ctx context.Context, c *schema.Collection, r *records.Record) (*records.Record, error) {
	if _, err := s.Records.Update(ctx, s.Records.System(), c, r.ID(), map[string]any{"password": schema.RandomString(48), "verified": true}); err != nil {
		return nil, err
	}
	s.logWarn("oauth2 took over an unverified account: password reset, sessions revoked", "collection", c.Name, "record", r.ID())
	return s.Records.FindAuth(ctx, c, "id", r.ID())
}

// oauth2SignUp creates the record for a first OAuth2 login. It is a
// sign-up like any other: made by the caller (not by the system), with
// createData as the request body, so the collection's create rule, field
// validation and the limits on privileged auth fields all apply exactly
// as for POST /records. Only what the provider vouches for is set by the
// server: the email, an unusable random password and the verified state.
func (s *Service) oauth2SignUp(ctx context.Context, caller *records.Caller, c *schema.Collection, email string, verified bool, createData map[string]any) (*records.Record, error) {
	if c.CreateRule == nil {
		return nil, apierr.Forbidden("Sign-up is disabled for this collection.")
	}
	if email == "" {
		return nil, apierr.BadRequest("The provider did not share an email address.")
	}
	if caller == nil || caller.Auth != nil {
		// A caller signed in elsewhere signs up as a new, anonymous user.
		anon := &records.Caller{}
		if caller != nil {
			anon.Method, anon.Query, anon.Headers = caller.Method, caller.Query, caller.Headers
		}
		caller = anon
	}
	password := schema.RandomString(48)
	body := make(map[string]any, len(createData)+3)
	for k, v := range createData {
		body[k] = v
	}
	body["email"], body["password"], body["passwordConfirm"] = email, password, password
	created, err := s.Records.CreateWith(ctx, caller, c, body, map[string]any{"verified": verified})
	if err != nil {
		return nil, err
	}
	r, err := s.Records.FindAuth(ctx, c, "id", created.ID())
	if err != nil || r == nil {
		return nil, apierr.Internal(errors.New("created record vanished"))
	}
	return r, nil
}
