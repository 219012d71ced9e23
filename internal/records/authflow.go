package records

import (
	"context"
	"database/sql"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/auth"
	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/store"
)

// The email flows: verification, password reset and email change. Each
// mails a token of its own type, signed with the record's current key and
// bound to the address it concerns, so it is useless as a login token,
// dies with a password change, and cannot be replayed once used (the
// state it changes is part of what it checks).

func duration(sec, def int64) time.Duration {
	if sec <= 0 {
		sec = def
	}
	return time.Duration(sec) * time.Second
}

// system is the identity the flows write as: rules do not apply to them.
func (s *Service) system() *Caller {
	c := s.Schema().Get(schema.SuperusersName)
	return &Caller{AuthCollection: c, Auth: &Record{Collection: c, Values: map[string]any{"id": "system"}}}
}

func errMailOff() *apierr.Error {
	return apierr.BadRequest("Email delivery is not configured: a superuser must set SMTP in the settings.")
}

// mailToken signs a flow token for r and emails it with template tmpl.
func (s *Service) mailToken(ctx context.Context, c *schema.Collection, r *Record, typ, tmpl, to, action string, ttl time.Duration) error {
	st, err := settings.Load(ctx, s.DB)
	if err != nil {
		return apierr.Internal(err)
	}
	if st.SMTP.Host == "" {
		return errMailOff()
	}
	now := time.Now()
	tok, err := auth.Sign(auth.Claims{ID: r.ID(), CollectionID: c.ID, Type: typ, IssuedAt: now.Unix(), Expires: now.Add(ttl).Unix(), Email: to},
		auth.SigningKey(c.Auth.Secret, r.String("tokenKey")))
	if err != nil {
		return apierr.Internal(err)
	}
	link := strings.TrimRight(st.AppURL, "/") + "/auth/" + action + "?collection=" + url.QueryEscape(c.Name) + "&token=" + url.QueryEscape(tok)
	subject, html, text, err := st.Template(tmpl).Render(mail.Data{AppName: st.AppName, AppURL: st.AppURL, Email: to, Token: tok, Link: link})
	if err != nil {
		return apierr.Internal(err)
	}
	from := st.Sender.Address
	if from == "" {
		from = "no-reply@" + hostOf(st.AppURL)
	}
	err = mail.Send(ctx, st.SMTP, mail.Message{FromName: st.Sender.Name, From: from, To: to, Subject: subject, HTML: html, Text: text})
	if errors.Is(err, mail.ErrNotConfigured) {
		return errMailOff()
	}
	if err != nil {
		e := apierr.New(http.StatusServiceUnavailable, "The email could not be sent; try again later.")
		e.Cause = err
		return e
	}
	return nil
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		return p.Hostname()
	}
	return "localhost"
}

// checkFlowToken verifies a flow token for collection c and returns the
// record it names (with its secrets).
func (s *Service) checkFlowToken(ctx context.Context, c *schema.Collection, token, typ string) (*Record, auth.Claims, error) {
	tc, r, claims, err := s.verifyToken(ctx, token, typ)
	if errors.Is(err, auth.ErrInvalidToken) || (err == nil && tc.ID != c.ID) {
		return nil, claims, apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "Invalid or expired token.")
	}
	if err != nil {
		return nil, claims, err
	}
	return r, claims, nil
}

// RequestVerification mails a verification link when email belongs to an
// unverified record. The answer never tells whether it does.
func (s *Service) RequestVerification(ctx context.Context, c *schema.Collection, email string) error {
	r, err := s.authRecord(ctx, c, "email", schema.NormalizeIdentity(email))
	if err != nil {
		return err
	}
	if r == nil || r.Values["verified"] == true {
		return s.mailConfigured(ctx)
	}
	return s.mailToken(ctx, c, r, auth.TypeVerification, "verification", r.String("email"), "confirm-verification",
		duration(c.Auth.VerificationTokenDuration, 3*24*3600))
}

// mailConfigured lets no-op requests fail the same way real ones would
// when mail is off, so the answer reveals nothing about accounts.
func (s *Service) mailConfigured(ctx context.Context) error {
	st, err := settings.Load(ctx, s.DB)
	if err != nil {
		return apierr.Internal(err)
	}
	if st.SMTP.Host == "" {
		return errMailOff()
	}
	return nil
}

// ConfirmVerification marks the record verified.
func (s *Service) ConfirmVerification(ctx context.Context, c *schema.Collection, token string) error {
	r, claims, err := s.checkFlowToken(ctx, c, token, auth.TypeVerification)
	if err != nil {
		return err
	}
	if claims.Email != r.String("email") || r.Values["verified"] == true {
		return apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "The token was already used or the email changed.")
	}
	_, err = s.Update(ctx, s.system(), c, r.ID(), map[string]any{"verified": true})
	return err
}

// RequestPasswordReset mails a reset link when email has an account.
func (s *Service) RequestPasswordReset(ctx context.Context, c *schema.Collection, email string) error {
	r, err := s.authRecord(ctx, c, "email", schema.NormalizeIdentity(email))
	if err != nil {
		return err
	}
	if r == nil {
		return s.mailConfigured(ctx)
	}
	return s.mailToken(ctx, c, r, auth.TypePasswordReset, "passwordReset", r.String("email"), "confirm-password-reset",
		duration(c.Auth.PasswordResetTokenDuration, 1800))
}

// ConfirmPasswordReset sets a new password. Setting it rotates the
// record's token key, which revokes this token and every session.
func (s *Service) ConfirmPasswordReset(ctx context.Context, c *schema.Collection, token, password, confirm string) error {
	r, claims, err := s.checkFlowToken(ctx, c, token, auth.TypePasswordReset)
	if err != nil {
		return err
	}
	if claims.Email != r.String("email") {
		return apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "Invalid or expired token.")
	}
	if password != confirm {
		return apierr.BadRequest("Failed to reset the password.").With("passwordConfirm", "validation_values_mismatch", "Values don't match.")
	}
	_, err = s.Update(ctx, s.system(), c, r.ID(), map[string]any{"password": password})
	return err
}

// RequestEmailChange mails a confirmation link to newEmail for the caller.
func (s *Service) RequestEmailChange(ctx context.Context, caller *Caller, c *schema.Collection, newEmail string) error {
	if caller.Auth == nil || caller.AuthCollection.ID != c.ID {
		return apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection.")
	}
	v, err := c.Field("email").Normalize(newEmail)
	if err != nil || v == "" {
		return apierr.BadRequest("Invalid email.").With("newEmail", "validation_invalid_email", "Must be a valid email address.")
	}
	newEmail = schema.NormalizeIdentity(v.(string))
	if taken, err := s.authRecord(ctx, c, "email", newEmail); err != nil {
		return err
	} else if taken != nil {
		return apierr.BadRequest("Invalid email.").With("newEmail", "validation_not_unique", "Value must be unique.")
	}
	r, err := s.authRecord(ctx, c, "id", caller.Auth.ID())
	if err != nil || r == nil {
		return apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection.")
	}
	return s.mailToken(ctx, c, r, auth.TypeEmailChange, "emailChange", newEmail, "confirm-email-change",
		duration(c.Auth.EmailChangeTokenDuration, 1800))
}

// ConfirmEmailChange switches the email after checking the password; the
// new address is verified by this very link. Old sessions are revoked.
func (s *Service) ConfirmEmailChange(ctx context.Context, c *schema.Collection, token, password string) error {
	r, claims, err := s.checkFlowToken(ctx, c, token, auth.TypeEmailChange)
	if err != nil {
		return err
	}
	if ok, _ := auth.CheckPassword(r.String("password"), password); !ok {
		return apierr.BadRequest("Failed to change the email.").With("password", "validation_invalid_password", "Invalid password.")
	}
	if claims.Email == r.String("email") {
		return apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "The token was already used.")
	}
	_, err = s.Update(ctx, s.system(), c, r.ID(), map[string]any{"email": claims.Email, "verified": true})
	if err != nil {
		return err
	}
	// A new address means new sessions only.
	return s.RotateTokenKey(ctx, c, r.ID())
}

// RotateTokenKey revokes every token of the record and ends its sessions
// ("log out everywhere").
func (s *Service) RotateTokenKey(ctx context.Context, c *schema.Collection, id string) error {
	d := s.DB.Dialect
	return s.DB.Tx(ctx, func(tx *sql.Tx) error {
		b := store.NewBuilder(d)
		if _, err := b.Exec(ctx, tx, "DELETE FROM _sessions WHERE collection = "+b.Arg(c.ID)+" AND record = "+b.Arg(id)); err != nil {
			return err
		}
		b = store.NewBuilder(d)
		_, err := b.Exec(ctx, tx, "UPDATE "+d.Quote(c.Name)+" SET "+d.Quote("tokenKey")+" = "+b.Arg(schema.RandomString(50))+" WHERE "+d.Quote("id")+" = "+b.Arg(id))
		return err
	})
}
