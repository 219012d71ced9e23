package identity

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/secret"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/sqldb"
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

// errMailOff answers requests that need mail while no SMTP is set; one
// value, so the email flows can tell it from other failures.
var errMailOff = apierr.BadRequest("Email delivery is not configured: a superuser must set SMTP in the settings.")

// Mail job kinds: requests only queue these; the queue's sender resolves
// them (looks the address up, signs the token, renders the template) and
// delivers them. So a request answers the same, in the same time, whether
// the address has an account or not, and whatever the SMTP server does.
const (
	jobVerification  = "verification"
	jobPasswordReset = "passwordReset"
	jobEmailChange   = "emailChange"
	jobOTP           = "otp"
)

// mailJob is the payload of an email flow job.
type mailJob struct {
	Collection string `json:"collection"`
	Email      string `json:"email,omitempty"`
	Record     string `json:"record,omitempty"`
	NewEmail   string `json:"newEmail,omitempty"`
	OTPID      string `json:"otpId,omitempty"`
}

// RegisterMailJobs teaches the mail queue to resolve the email flows.
func (s *Service) RegisterMailJobs(q *mail.Queue) {
	s.Mail = q
	q.Handle(jobVerification, s.resolve(func(ctx context.Context, c *schema.Collection, j mailJob) (*mail.Message, error) {
		r, err := s.Records.FindAuth(ctx, c, "email", j.Email)
		if err != nil || r == nil || r.Values["verified"] == true {
			return nil, err
		}
		return s.flowMessage(ctx, c, r, secret.TypeVerification, "verification", r.String("email"), "confirm-verification",
			duration(c.Auth.VerificationTokenDuration, 3*24*3600))
	}))
	q.Handle(jobPasswordReset, s.resolve(func(ctx context.Context, c *schema.Collection, j mailJob) (*mail.Message, error) {
		r, err := s.Records.FindAuth(ctx, c, "email", j.Email)
		if err != nil || r == nil {
			return nil, err
		}
		return s.flowMessage(ctx, c, r, secret.TypePasswordReset, "passwordReset", r.String("email"), "confirm-password-reset",
			duration(c.Auth.PasswordResetTokenDuration, 1800))
	}))
	q.Handle(jobEmailChange, s.resolve(func(ctx context.Context, c *schema.Collection, j mailJob) (*mail.Message, error) {
		r, err := s.Records.FindAuth(ctx, c, "id", j.Record)
		if err != nil || r == nil {
			return nil, err
		}
		return s.flowMessage(ctx, c, r, secret.TypeEmailChange, "emailChange", j.NewEmail, "confirm-email-change",
			duration(c.Auth.EmailChangeTokenDuration, 1800))
	}))
	q.Handle(jobOTP, s.resolve(s.otpMessage))
}

// resolve decodes a job and finds its collection; a collection deleted
// since the request leaves nothing to send.
func (s *Service) resolve(fn func(ctx context.Context, c *schema.Collection, j mailJob) (*mail.Message, error)) mail.Resolver {
	return func(ctx context.Context, payload json.RawMessage) (*mail.Message, error) {
		var j mailJob
		if err := json.Unmarshal(payload, &j); err != nil {
			return nil, err
		}
		c := s.Schema().Get(j.Collection)
		if c == nil || !c.IsAuth() {
			return nil, nil
		}
		return fn(ctx, c, j)
	}
}

// enqueueMail checks that mail is configured and queues a flow job. The
// check comes first and does not depend on the address, so it reveals
// nothing about accounts either.
func (s *Service) enqueueMail(ctx context.Context, kind string, j mailJob) error {
	if err := s.mailConfigured(ctx); err != nil {
		return err
	}
	if s.Mail == nil {
		return errMailOff
	}
	if err := s.Mail.Enqueue(ctx, s.DB.Write, kind, j); err != nil {
		return s.Records.QueryErr(err)
	}
	return nil
}

// enqueueFlowMail queues an email flow job (verification, password
// reset, email change). With mail off these answer as if queued, as
// PocketBase does (its clients treat the request as done, and the answer
// still depends on no account), and the server logs a warning naming the
// flow: an operator sees why no mail arrives.
func (s *Service) enqueueFlowMail(ctx context.Context, kind string, j mailJob) error {
	err := s.enqueueMail(ctx, kind, j)
	if err == errMailOff {
		if s.Log != nil {
			s.Log.Warn("email flow requested but SMTP is not configured: nothing sent", "flow", kind, "collection", j.Collection)
		}
		return nil
	}
	return err
}

// requestEmail is the address of an email flow request in its canonical
// form; a blank or over-long one is refused before anything is looked up.
func requestEmail(email string) (string, error) {
	email = schema.NormalizeIdentity(email)
	if email == "" || len(email) > 254 {
		return "", apierr.BadRequest("Invalid email.").With("email", "validation_invalid_email", "Must be a valid email address.")
	}
	return email, nil
}

// flowMessage signs a flow token for r and renders template tmpl for to.
func (s *Service) flowMessage(ctx context.Context, c *schema.Collection, r *records.Record, typ, tmpl, to, action string, ttl time.Duration) (*mail.Message, error) {
	st, err := settings.Load(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tok, err := secret.Sign(secret.Claims{ID: r.ID(), CollectionID: c.ID, Type: typ, IssuedAt: now.Unix(), Expires: now.Add(ttl).Unix(), Email: to},
		secret.SigningKey(c.Auth.Secret, r.String("tokenKey")))
	if err != nil {
		return nil, err
	}
	link := st.Link(s.servedURL(), action, c.Name, tok)
	subject, html, text, err := st.Template(tmpl).Render(mail.Data{AppName: st.AppName, AppURL: st.BaseURL(s.servedURL()), Email: to, Token: tok, Link: link})
	if err != nil {
		return nil, err
	}
	return message(st, to, subject, html, text), nil
}

// servedURL is the address links point to when the settings name no
// appURL: what this node serves (ServedURL), else a loopback default.
func (s *Service) servedURL() string {
	if s.ServedURL != nil {
		if u := s.ServedURL(); u != "" {
			return u
		}
	}
	return "http://127.0.0.1:8090"
}

// message addresses a rendered email from the configured sender.
func message(st *settings.Settings, to, subject, html, text string) *mail.Message {
	from := st.Sender.Address
	if from == "" {
		from = "no-reply@" + hostOf(st.AppURL) // localhost when unset
	}
	return &mail.Message{FromName: st.Sender.Name, From: from, To: to, Subject: subject, HTML: html, Text: text}
}

func hostOf(u string) string {
	if p, err := url.Parse(u); err == nil && p.Hostname() != "" {
		return p.Hostname()
	}
	return "localhost"
}

// checkFlowToken verifies a flow token for collection c and returns the
// record it names (with its secrets).
func (s *Service) checkFlowToken(ctx context.Context, c *schema.Collection, token, typ string) (*records.Record, secret.Claims, error) {
	tc, r, claims, err := s.verifyToken(ctx, token, typ)
	if errors.Is(err, secret.ErrInvalidToken) || (err == nil && tc.ID != c.ID) {
		return nil, claims, apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "Invalid or expired token.")
	}
	if err != nil {
		return nil, claims, err
	}
	return r, claims, nil
}

// RequestVerification queues a verification link for email; it is sent
// only when email belongs to an unverified record. The answer never tells
// whether it does.
func (s *Service) RequestVerification(ctx context.Context, c *schema.Collection, email string) error {
	email, err := requestEmail(email)
	if err != nil {
		return err
	}
	return s.enqueueFlowMail(ctx, jobVerification, mailJob{Collection: c.ID, Email: email})
}

// mailConfigured lets no-op requests fail the same way real ones would
// when mail is off, so the answer reveals nothing about accounts.
func (s *Service) mailConfigured(ctx context.Context) error {
	st, err := settings.Load(ctx, s.DB)
	if err != nil {
		return apierr.Internal(err)
	}
	if st.SMTP.Host == "" {
		return errMailOff
	}
	return nil
}

// ConfirmVerification marks the record verified.
func (s *Service) ConfirmVerification(ctx context.Context, c *schema.Collection, token string) error {
	r, claims, err := s.checkFlowToken(ctx, c, token, secret.TypeVerification)
	if err != nil {
		return err
	}
	if claims.Email != r.String("email") || r.Values["verified"] == true {
		return apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "The token was already used or the email changed.")
	}
	_, err = s.Records.Update(ctx, s.Records.System(), c, r.ID(), map[string]any{"verified": true})
	return err
}

// RequestPasswordReset queues a reset link for email, sent only when
// email has an account. The answer never tells whether it does.
func (s *Service) RequestPasswordReset(ctx context.Context, c *schema.Collection, email string) error {
	email, err := requestEmail(email)
	if err != nil {
		return err
	}
	return s.enqueueFlowMail(ctx, jobPasswordReset, mailJob{Collection: c.ID, Email: email})
}

// ConfirmPasswordReset sets a new password. Setting it rotates the
// record's token key, which revokes this token and every session.
func (s *Service) ConfirmPasswordReset(ctx context.Context, c *schema.Collection, token, password, confirm string) error {
	r, claims, err := s.checkFlowToken(ctx, c, token, secret.TypePasswordReset)
	if err != nil {
		return err
	}
	if claims.Email != r.String("email") {
		return apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "Invalid or expired token.")
	}
	if password != confirm {
		return apierr.BadRequest("Failed to reset the password.").With("passwordConfirm", "validation_values_mismatch", "Values don't match.")
	}
	_, err = s.Records.Update(ctx, s.Records.System(), c, r.ID(), map[string]any{"password": password})
	return err
}

// RequestEmailChange mails a confirmation link to newEmail for the caller.
func (s *Service) RequestEmailChange(ctx context.Context, caller *records.Caller, c *schema.Collection, newEmail string) error {
	if caller.Auth == nil || caller.AuthCollection.ID != c.ID {
		return apierr.New(http.StatusUnauthorized, "The request requires a valid auth token of this collection.")
	}
	v, err := c.Field("email").Normalize(newEmail)
	if err != nil || v == "" {
		return apierr.BadRequest("Invalid email.").With("newEmail", "validation_invalid_email", "Must be a valid email address.")
	}
	newEmail = schema.NormalizeIdentity(v.(string))
	if taken, err := s.Records.FindAuth(ctx, c, "email", newEmail); err != nil {
		return err
	} else if taken != nil {
		return apierr.BadRequest("Invalid email.").With("newEmail", "validation_not_unique", "Value must be unique.")
	}
	return s.enqueueFlowMail(ctx, jobEmailChange, mailJob{Collection: c.ID, Record: caller.Auth.ID(), NewEmail: newEmail})
}

// ConfirmEmailChange switches the email after checking the password; the
// new address is verified by this very link. Old sessions are revoked.
func (s *Service) ConfirmEmailChange(ctx context.Context, c *schema.Collection, token, password string) error {
	r, claims, err := s.checkFlowToken(ctx, c, token, secret.TypeEmailChange)
	if err != nil {
		return err
	}
	if ok, _ := secret.CheckPassword(r.String("password"), password); !ok {
		return apierr.BadRequest("Failed to change the email.").With("password", "validation_invalid_password", "Invalid password.")
	}
	if claims.Email == r.String("email") {
		return apierr.BadRequest("Invalid or expired token.").With("token", "validation_invalid_token", "The token was already used.")
	}
	_, err = s.Records.Update(ctx, s.Records.System(), c, r.ID(), map[string]any{"email": claims.Email, "verified": true})
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
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		b := sqldb.NewBuilder(d)
		if _, err := b.Exec(ctx, tx, "DELETE FROM _sessions WHERE collection = "+b.Arg(c.ID)+" AND record = "+b.Arg(id)); err != nil {
			return err
		}
		b = sqldb.NewBuilder(d)
		_, err := b.Exec(ctx, tx, "UPDATE "+d.Quote(c.Name)+" SET "+d.Quote("tokenKey")+" = "+b.Arg(schema.RandomString(50))+" WHERE "+d.Quote("id")+" = "+b.Arg(id))
		return err
	})
	if err == nil {
		s.revoked(c.ID, id)
	}
	return err
}
