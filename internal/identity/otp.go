package identity

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"time"

	"github.com/plinthhq/plinth/internal/apierr"
	"github.com/plinthhq/plinth/internal/mail"
	"github.com/plinthhq/plinth/internal/records"
	"github.com/plinthhq/plinth/internal/schema"
	"github.com/plinthhq/plinth/internal/settings"
	"github.com/plinthhq/plinth/internal/sqldb"
)

// MaxOTPAttempts bounds guesses per code; with 6 digits that is a 5 in a
// million chance, before the rate limits even apply.
const MaxOTPAttempts = 5

func otpHash(c *schema.Collection, otpID, code string) string {
	m := hmac.New(sha256.New, []byte(c.Auth.Secret))
	m.Write([]byte(otpID + "\x00" + code))
	return hex.EncodeToString(m.Sum(nil))
}

// RequestOTP emails a one-time code when email has an account and always
// returns an otpId, so the answer does not reveal whether it has.
func (s *Service) RequestOTP(ctx context.Context, c *schema.Collection, email string) (string, error) {
	if !c.Auth.OTP.Enabled {
		return "", apierr.BadRequest("One-time passwords are not enabled for this collection.")
	}
	email, err := requestEmail(email)
	if err != nil {
		return "", err
	}
	otpID := schema.RandomString(20)
	if err := s.enqueueMail(ctx, jobOTP, mailJob{Collection: c.ID, Email: email, OTPID: otpID}); err != nil {
		return "", err
	}
	return otpID, nil
}

// otpMessage resolves a queued OTP request (at each delivery attempt):
// when the address has an account, it stores a fresh code (hashed) under
// the otpId the client already holds and renders the mail carrying it.
func (s *Service) otpMessage(ctx context.Context, c *schema.Collection, j mailJob) (*mail.Message, error) {
	if !c.Auth.OTP.Enabled {
		return nil, nil
	}
	r, err := s.Records.FindAuth(ctx, c, "email", j.Email)
	if err != nil || r == nil {
		return nil, err
	}
	st, err := settings.Load(ctx, s.DB)
	if err != nil {
		return nil, err
	}
	length := c.Auth.OTP.Length
	if length < 6 || length > 10 {
		length = 6
	}
	n, err := rand.Int(rand.Reader, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(length)), nil))
	if err != nil {
		return nil, err
	}
	code := n.String()
	code = strings.Repeat("0", length-len(code)) + code
	ttl := duration(c.Auth.OTP.Duration, 300)
	// A retry resolves the job again: the new code replaces the one an
	// earlier, failed attempt stored (and its expiry starts over), so the
	// code that finally arrives is the one that works. Guesses already
	// spent on the otpId still count.
	b := sqldb.NewBuilder(s.DB.Dialect)
	if _, err := b.Exec(ctx, s.DB.Write, "INSERT INTO _otps (id, collection, record, hash, attempts, expires) VALUES ("+
		b.Arg(j.OTPID)+", "+b.Arg(c.ID)+", "+b.Arg(r.ID())+", "+b.Arg(otpHash(c, j.OTPID, code))+", 0, "+b.Arg(schema.FormatDate(time.Now().Add(ttl)))+")"+
		" ON CONFLICT (id) DO UPDATE SET record = excluded.record, hash = excluded.hash, expires = excluded.expires"); err != nil {
		return nil, err
	}
	subject, html, text, err := st.Template("otp").Render(mail.Data{AppName: st.AppName, AppURL: st.BaseURL(s.servedURL()), Email: r.String("email"), Code: code})
	if err != nil {
		return nil, err
	}
	return message(st, r.String("email"), subject, html, text), nil
}

// AuthWithOTP checks a code and returns the record it was sent to. The
// code is single-use; wrong guesses count against it. Receiving the code
// proves the address, so the record becomes verified.
func (s *Service) AuthWithOTP(ctx context.Context, c *schema.Collection, otpID, code string) (*records.Record, error) {
	bad := apierr.BadRequest("Invalid or expired code.").With("password", "validation_invalid_otp", "Invalid or expired code.")
	if !c.Auth.OTP.Enabled {
		return nil, apierr.BadRequest("One-time passwords are not enabled for this collection.")
	}
	var recID, hash string
	var attempts int
	var expires string
	var matched bool
	err := s.DB.Tx(ctx, func(tx *sql.Tx) error {
		b := sqldb.NewBuilder(s.DB.Dialect)
		err := b.QueryRow(ctx, tx, "SELECT record, hash, attempts, expires FROM _otps WHERE id = "+b.Arg(otpID)+" AND collection = "+b.Arg(c.ID)).
			Scan(&recID, &hash, &attempts, &expires)
		if errors.Is(err, sql.ErrNoRows) {
			return bad
		}
		if err != nil {
			return err
		}
		if attempts >= MaxOTPAttempts || expires < schema.FormatDate(time.Now()) {
			return bad
		}
		matched = hmac.Equal([]byte(hash), []byte(otpHash(c, otpID, strings.TrimSpace(code))))
		// The read above takes no lock: concurrent requests (on this node
		// or another) may all have read the same row. Only the statement
		// that actually consumes the row (or counts the guess while guesses
		// remain) wins; the others see zero affected rows and fail.
		b = sqldb.NewBuilder(s.DB.Dialect)
		var res sql.Result
		if matched {
			res, err = b.Exec(ctx, tx, "DELETE FROM _otps WHERE id = "+b.Arg(otpID)+" AND attempts < "+b.Arg(MaxOTPAttempts))
		} else {
			res, err = b.Exec(ctx, tx, "UPDATE _otps SET attempts = attempts + 1 WHERE id = "+b.Arg(otpID)+" AND attempts < "+b.Arg(MaxOTPAttempts))
		}
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n != 1 {
			matched = false
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !matched {
		return nil, bad
	}
	r, err := s.Records.FindAuth(ctx, c, "id", recID)
	if err != nil || r == nil {
		return nil, bad
	}
	if r.Values["verified"] != true {
		if _, err := s.Records.Update(ctx, s.Records.System(), c, r.ID(), map[string]any{"verified": true}); err != nil {
			return nil, err
		}
		r.Values["verified"] = true
	}
	return r, nil
}

// SecondFactor applies the collection's MFA policy after a successful
// first method. With MFA off, or when mfaID proves a different method
// already succeeded for the same record, the login completes (nil
// error). Otherwise it records this method and returns a 401 carrying the
// mfaId to present with the next method.
func (s *Service) SecondFactor(ctx context.Context, c *schema.Collection, r *records.Record, method, mfaID string) error {
	if !c.Auth.MFA.Enabled {
		return nil
	}
	now := schema.FormatDate(time.Now())
	if mfaID != "" {
		// Consume the MFA login in one statement: whichever request deletes
		// the row completes the login, every concurrent one (on any node)
		// affects no row and is refused, so an mfaId works exactly once.
		b := sqldb.NewBuilder(s.DB.Dialect)
		res, err := b.Exec(ctx, s.DB.Write, "DELETE FROM _mfas WHERE id = "+b.Arg(mfaID)+" AND collection = "+b.Arg(c.ID)+
			" AND record = "+b.Arg(r.ID())+" AND method <> "+b.Arg(method)+" AND expires >= "+b.Arg(now))
		if err != nil {
			return apierr.Internal(err)
		}
		if n, err := res.RowsAffected(); err == nil && n == 1 {
			return nil
		}
		return apierr.BadRequest("Invalid or expired MFA session.").With("mfaId", "validation_invalid_mfa", "Invalid or expired MFA session, or the same method used twice.")
	}
	id := schema.RandomString(20)
	b := sqldb.NewBuilder(s.DB.Dialect)
	if _, err := b.Exec(ctx, s.DB.Write, "INSERT INTO _mfas (id, collection, record, method, expires) VALUES ("+b.Arg(id)+", "+b.Arg(c.ID)+", "+
		b.Arg(r.ID())+", "+b.Arg(method)+", "+b.Arg(schema.FormatDate(time.Now().Add(duration(c.Auth.MFA.Duration, 600))))+")"); err != nil {
		return apierr.Internal(err)
	}
	e := apierr.New(http.StatusUnauthorized, "A second authentication method is required.")
	e.MFAID = id
	return e
}

// PasswordFactor checks identity and password and returns the record
// with its token key, for the MFA step before a token is issued.
func (s *Service) PasswordFactor(ctx context.Context, c *schema.Collection, identity, password string) (*records.Record, error) {
	_, r, err := s.authWithPassword(ctx, c, identity, password, false)
	return r, err
}
