package identity

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/sqldb"
)

func errBadCredentials() *apierr.Error {
	return apierr.BadRequest("Failed to authenticate.")
}

// AuthWithPassword checks identity (email) and password and issues a token.
// Unknown identities spend the same hashing time as wrong passwords and get
// the same answer.
func (s *Service) AuthWithPassword(ctx context.Context, c *schema.Collection, identity, password string) (string, *records.Record, error) {
	return s.authWithPassword(ctx, c, identity, password, true)
}

// authWithPassword checks the password; with issue false it returns the
// record (secrets included) without a token, for MFA.
func (s *Service) authWithPassword(ctx context.Context, c *schema.Collection, identity, password string, issue bool) (tok string, rec *records.Record, err error) {
	rawIdentity := identity
	if !c.IsAuth() {
		return "", nil, apierr.NotFound("Not an auth collection.")
	}
	identity = schema.NormalizeIdentity(identity)
	if identity == "" || password == "" || len(identity) > 254 || len(password) > 256 {
		e := errBadCredentials()
		if identity == "" {
			e.With("identity", "validation_required", "Cannot be blank.")
		}
		if password == "" {
			e.With("password", "validation_required", "Cannot be blank.")
		}
		return "", nil, e
	}
	var r *records.Record
	for _, field := range identityFields(c) {
		id := identity
		if field != "email" {
			id = strings.TrimSpace(rawIdentity)
		}
		if r, err = s.Records.FindAuth(ctx, c, c.Field(field).Name, id); err != nil {
			return "", nil, err
		}
		if r != nil {
			break
		}
	}
	if r == nil {
		secret.BurnPasswordCheck(password)
		return "", nil, errBadCredentials()
	}
	ok, err := secret.CheckPassword(r.String("password"), password)
	if err != nil && !errors.Is(err, secret.ErrMalformedHash) {
		return "", nil, apierr.Internal(err)
	}
	if !ok {
		return "", nil, errBadCredentials()
	}
	// Checked only after the password, so it reveals nothing to guessers.
	if c.Auth.RequireVerified && r.Values["verified"] != true {
		return "", nil, apierr.Forbidden("Verify your email address before logging in.")
	}
	if !issue {
		return "", r, nil
	}
	tok, err = s.IssueToken(c, r)
	if err != nil {
		return "", nil, err
	}
	return tok, records.StripSecrets(r), nil
}

func identityFields(c *schema.Collection) []string {
	if len(c.Auth.IdentityFields) == 0 {
		return []string{"email"}
	}
	return c.Auth.IdentityFields
}

// Impersonate issues a short-lived, non-refreshable token for record id of
// c, for a superuser to act as that user. The caller logs it.
func (s *Service) Impersonate(ctx context.Context, c *schema.Collection, id string, ttl time.Duration) (string, *records.Record, error) {
	r, err := s.Records.FindAuth(ctx, c, "id", id)
	if err != nil {
		return "", nil, err
	}
	if r == nil {
		return "", nil, apierr.NotFound("The requested resource wasn't found.")
	}
	now := time.Now()
	tok, err := secret.Sign(secret.Claims{ID: r.ID(), CollectionID: c.ID, Type: secret.TypeAuth, IssuedAt: now.Unix(), Expires: now.Add(ttl).Unix()},
		secret.SigningKey(c.Auth.Secret, r.String("tokenKey")))
	if err != nil {
		return "", nil, apierr.Internal(err)
	}
	return tok, records.StripSecrets(r), nil
}

// IssueToken signs an auth token for r (which must carry its token key).
func (s *Service) IssueToken(c *schema.Collection, r *records.Record) (string, error) {
	now := time.Now()
	tok, err := secret.Sign(secret.Claims{
		ID: r.ID(), CollectionID: c.ID, Type: secret.TypeAuth, IssuedAt: now.Unix(),
		Expires: now.Add(time.Duration(c.Auth.TokenDuration) * time.Second).Unix(), Refreshable: true,
	}, secret.SigningKey(c.Auth.Secret, r.String("tokenKey")))
	if err != nil {
		return "", apierr.Internal(err)
	}
	return tok, nil
}

// Authenticate resolves a bearer token to its collection and record. Any
// failure — bad format, unknown record, wrong key, expiry — is one 401.
func (s *Service) Authenticate(ctx context.Context, token string) (*schema.Collection, *records.Record, error) {
	return s.authenticate(ctx, token, secret.TypeAuth)
}

// FileTokenTTL is the lifetime of tokens for protected files: long enough
// to load a page's images, short enough that a leaked URL soon expires.
const FileTokenTTL = 2 * time.Minute

// IssueFileToken signs a short-lived token for reading protected files as
// the caller. Like auth tokens it dies with the caller's token key.
func (s *Service) IssueFileToken(ctx context.Context, caller *records.Caller) (string, error) {
	c := caller.AuthCollection
	r, err := s.Records.FindAuth(ctx, c, "id", caller.Auth.ID())
	if err != nil || r == nil {
		return "", apierr.New(http.StatusUnauthorized, "The request requires a valid auth token.")
	}
	now := time.Now()
	tok, err := secret.Sign(secret.Claims{ID: r.ID(), CollectionID: c.ID, Type: secret.TypeFile, IssuedAt: now.Unix(),
		Expires: now.Add(FileTokenTTL).Unix()}, secret.SigningKey(c.Auth.Secret, r.String("tokenKey")))
	if err != nil {
		return "", apierr.Internal(err)
	}
	return tok, nil
}

// AuthenticateFileToken resolves a file token to the caller it was issued to.
func (s *Service) AuthenticateFileToken(ctx context.Context, token string) (*records.Caller, error) {
	c, r, err := s.authenticate(ctx, token, secret.TypeFile)
	if err != nil {
		return nil, err
	}
	return &records.Caller{AuthCollection: c, Auth: r}, nil
}

func (s *Service) authenticate(ctx context.Context, token, typ string) (*schema.Collection, *records.Record, error) {
	c, r, _, err := s.verifyToken(ctx, token, typ)
	if errors.Is(err, secret.ErrInvalidToken) {
		return nil, nil, apierr.New(http.StatusUnauthorized, "The request requires a valid auth token.")
	}
	if err != nil {
		// The token may well be valid: a client told 401 would sign its
		// user out over a database blip.
		e := apierr.New(http.StatusServiceUnavailable, "The token cannot be checked right now; try again shortly.")
		e.Cause = err
		return nil, nil, e
	}
	return c, records.StripSecrets(r), nil
}

// verifyToken checks a token of type typ: its collection, its record and
// the signature with that record's current key. The record comes back
// with its secrets. Every failure is secret.ErrInvalidToken, except
// database errors.
func (s *Service) verifyToken(ctx context.Context, token, typ string) (*schema.Collection, *records.Record, secret.Claims, error) {
	claims, err := secret.Peek(token)
	if err != nil || claims.Type != typ {
		return nil, nil, claims, secret.ErrInvalidToken
	}
	c, err := s.Records.Collection(ctx, claims.CollectionID)
	if err != nil {
		return nil, nil, claims, s.Records.QueryErr(err)
	}
	if c == nil || !c.IsAuth() || c.ID != claims.CollectionID {
		return nil, nil, claims, secret.ErrInvalidToken
	}
	// A token of a session loads its record only while the session is
	// open: one query checks both.
	var r *records.Record
	if claims.SessionID != "" {
		if r, err = s.Records.FindAuthInSession(ctx, c, claims.ID, claims.SessionID); err != nil {
			return nil, nil, claims, err
		}
	} else if r, err = s.Records.FindAuth(ctx, c, "id", claims.ID); err != nil {
		return nil, nil, claims, err
	}
	if r == nil {
		return nil, nil, claims, secret.ErrInvalidToken
	}
	if _, err := secret.Verify(token, secret.SigningKey(c.Auth.Secret, r.String("tokenKey")), time.Now()); err != nil {
		return nil, nil, claims, secret.ErrInvalidToken
	}
	return c, r, claims, nil
}

// AuthRecordWithKey reloads an auth record with its token key, for
// issuing a fresh token on refresh.
func (s *Service) AuthRecordWithKey(ctx context.Context, c *schema.Collection, id string) (*records.Record, error) {
	return s.Records.FindAuth(ctx, c, "id", id)
}

// Session is one signed-in device.
type Session struct {
	ID        string `json:"id"`
	Created   string `json:"created"`
	UserAgent string `json:"userAgent"`
	IP        string `json:"ip"`
	Current   bool   `json:"current"`
}

// StartSession records a login and issues its token.
func (s *Service) StartSession(ctx context.Context, c *schema.Collection, r *records.Record, userAgent, ip string) (string, error) {
	sid := schema.RandomString(20)
	if len(userAgent) > 300 {
		userAgent = userAgent[:300]
	}
	b := sqldb.NewBuilder(s.DB.Dialect)
	if _, err := b.Exec(ctx, s.DB.Write, "INSERT INTO _sessions (id, collection, record, created, userAgent, ip) VALUES ("+
		b.Arg(sid)+", "+b.Arg(c.ID)+", "+b.Arg(r.ID())+", "+b.Arg(schema.FormatDate(time.Now()))+", "+b.Arg(userAgent)+", "+b.Arg(ip)+")"); err != nil {
		return "", apierr.Internal(err)
	}
	return s.sessionToken(c, r, sid)
}

// RefreshSession issues a fresh token for the session of token, if it is
// still open.
func (s *Service) RefreshSession(ctx context.Context, c *schema.Collection, r *records.Record, token string) (string, error) {
	claims, err := secret.Peek(token)
	if err != nil {
		return "", apierr.New(http.StatusUnauthorized, "The request requires a valid auth token.")
	}
	return s.sessionToken(c, r, claims.SessionID)
}

func (s *Service) sessionToken(c *schema.Collection, r *records.Record, sid string) (string, error) {
	now := time.Now()
	tok, err := secret.Sign(secret.Claims{
		ID: r.ID(), CollectionID: c.ID, Type: secret.TypeAuth, IssuedAt: now.Unix(), SessionID: sid,
		Expires: now.Add(time.Duration(c.Auth.TokenDuration) * time.Second).Unix(), Refreshable: true,
	}, secret.SigningKey(c.Auth.Secret, r.String("tokenKey")))
	if err != nil {
		return "", apierr.Internal(err)
	}
	return tok, nil
}

// Sessions lists the caller's open sessions; current marks the one of
// the token making the request.
func (s *Service) Sessions(ctx context.Context, caller *records.Caller, token string) ([]Session, error) {
	current := ""
	if claims, err := secret.Peek(token); err == nil {
		current = claims.SessionID
	}
	b := sqldb.NewBuilder(s.DB.Dialect)
	rows, err := b.Query(ctx, s.DB.Read, "SELECT id, created, userAgent, ip FROM _sessions WHERE collection = "+b.Arg(caller.AuthCollection.ID)+
		" AND record = "+b.Arg(caller.Auth.ID())+" ORDER BY created DESC, id")
	if err != nil {
		return nil, apierr.Internal(err)
	}
	defer rows.Close()
	out := []Session{}
	for rows.Next() {
		var ss Session
		if err := rows.Scan(&ss.ID, &ss.Created, &ss.UserAgent, &ss.IP); err != nil {
			return nil, apierr.Internal(err)
		}
		ss.Current = ss.ID == current
		out = append(out, ss)
	}
	return out, rows.Err()
}

// RevokeSession signs one of the caller's devices out.
func (s *Service) RevokeSession(ctx context.Context, caller *records.Caller, sid string) error {
	b := sqldb.NewBuilder(s.DB.Dialect)
	res, err := b.Exec(ctx, s.DB.Write, "DELETE FROM _sessions WHERE id = "+b.Arg(sid)+" AND collection = "+b.Arg(caller.AuthCollection.ID)+" AND record = "+b.Arg(caller.Auth.ID()))
	if err != nil {
		return apierr.Internal(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return apierr.NotFound("Session not found.")
	}
	s.revoked(caller.AuthCollection.ID, caller.Auth.ID())
	return nil
}
