package tests

import (
	"io"
	"mime"
	"mime/multipart"
	"net"
	"net/mail"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

// smtpSink is a real SMTP server (go-smtp) on 127.0.0.1 that keeps mail.
type smtpSink struct {
	got chan received
	// failing makes the server refuse every recipient with a temporary
	// error, like a mail server that is down for maintenance.
	failing atomic.Bool
	// refused counts recipients refused while failing.
	refused atomic.Int64
}

type received struct {
	to   string
	text string
}

func (b *smtpSink) NewSession(*smtp.Conn) (smtp.Session, error) { return &sinkSession{b: b}, nil }

type sinkSession struct {
	b  *smtpSink
	to string
}

func (s *sinkSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *sinkSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	if s.b.failing.Load() {
		s.b.refused.Add(1)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Try again later"}
	}
	s.to = to
	return nil
}
func (s *sinkSession) Data(r io.Reader) error {
	msg, err := mail.ReadMessage(r)
	if err != nil {
		return err
	}
	_, params, _ := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	mr := multipart.NewReader(msg.Body, params["boundary"])
	var text string
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(p) // quoted-printable is decoded by the reader
		if strings.HasPrefix(p.Header.Get("Content-Type"), "text/plain") {
			text = string(b)
		}
	}
	s.b.got <- received{to: s.to, text: text}
	return nil
}
func (s *sinkSession) Reset()        {}
func (s *sinkSession) Logout() error { return nil }

func startSMTP(t *testing.T) (*smtpSink, string) {
	sink := &smtpSink{got: make(chan received, 16)}
	srv := smtp.NewServer(sink)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return sink, ln.Addr().String()
}

// tokenRe finds the token of an email-flow link: the dashboard's
// confirmation page (/_/#/auth/<action>/<token>, the default) or a
// settings-defined link with token=<token>.
var tokenRe = regexp.MustCompile(`(?:token=|/_/#/auth/confirm-[a-z-]+/)([A-Za-z0-9_\-.%]+)`)

func (b *smtpSink) next(t *testing.T, to string) string {
	t.Helper()
	return b.match(t, to, tokenRe)
}

// match waits for the next mail, checks its recipient and returns the
// first group of re in its text part.
func (b *smtpSink) match(t *testing.T, to string, re *regexp.Regexp) string {
	t.Helper()
	select {
	case m := <-b.got:
		if m.to != to {
			t.Fatalf("mail to %s, want %s", m.to, to)
		}
		mm := re.FindStringSubmatch(m.text)
		if mm == nil {
			t.Fatalf("no token in mail: %q", m.text)
		}
		return strings.ReplaceAll(mm[1], "%3D", "=")
	case <-time.After(10 * time.Second):
		t.Fatalf("no mail to %s", to)
	}
	return ""
}

func TestEmailFlows(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		sink, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		s.collection(map[string]any{"name": "users", "type": "auth", "listRule": "", "viewRule": "", "createRule": "",
			"authOptions": map[string]any{"passwordResetTokenDuration": 2}})
		s.collection(map[string]any{"name": "members", "type": "auth", "createRule": ""})
		anaID, anaTok := s.user("users", "ana@example.com", nil)
		s.user("members", "ana@example.com", nil)
		base := "/api/collections/users/"

		// Without SMTP the flows answer as PocketBase does (204, the
		// server logs a warning), alike for known and unknown addresses;
		// nothing is queued for later.
		for _, email := range []string{"ana@example.com", "nobody@example.com"} {
			s.do("POST", base+"request-verification", "", map[string]any{"email": email}).status(204)
			s.do("POST", base+"request-password-reset", "", map[string]any{"email": email}).status(204)
		}
		s.do("POST", base+"request-email-change", anaTok, map[string]any{"newEmail": "ana2@example.com"}).status(204)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"appURL": "https://app.example.com",
			"smtp":   map[string]any{"host": host, "port": atoi(port), "tls": "none", "username": "", "password": "smtp-secret"},
			"sender": map[string]any{"name": "Plinth", "address": "no-reply@example.com"}}).status(200)
		if st := s.do("GET", "/api/settings", s.su, nil).status(200); strings.Contains(string(st.raw), "smtp-secret") {
			t.Errorf("SMTP password readable: %s", st.raw)
		}
		s.do("GET", "/api/settings", anaTok, nil).status(403)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"templates": map[string]any{"verification": map[string]any{"subject": "{{.Nope}}"}}}).status(400)

		// Verification.
		s.do("POST", base+"request-verification", "", map[string]any{"email": "nobody@example.com"}).status(204) // no mail, same answer
		s.do("POST", base+"request-verification", "", map[string]any{"email": "ana@example.com"}).status(204)
		vt := sink.next(t, "ana@example.com")
		s.do("POST", base+"auth-refresh", vt, nil).status(401)                                                     // a flow token is no login token
		s.do("POST", "/api/collections/members/confirm-verification", "", map[string]any{"token": vt}).status(400) // other collection
		s.do("POST", base+"confirm-verification", "", map[string]any{"token": vt[:len(vt)-3] + "abc"}).status(400) // tampered
		s.do("POST", base+"confirm-verification", "", map[string]any{"token": vt}).status(204)
		if v := s.do("GET", base+"records/"+anaID, s.su, nil).status(200).body["verified"]; v != true {
			t.Errorf("not verified")
		}
		s.do("POST", base+"confirm-verification", "", map[string]any{"token": vt}).status(400) // single use

		// Password reset: revokes sessions, single use, expires.
		s.do("POST", base+"request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		rt := sink.next(t, "ana@example.com")
		s.do("POST", base+"confirm-password-reset", "", map[string]any{"token": rt, "password": "brand-new-pass", "passwordConfirm": "other"}).status(400)
		s.do("POST", base+"confirm-password-reset", "", map[string]any{"token": rt, "password": "brand-new-pass", "passwordConfirm": "brand-new-pass"}).status(204)
		s.do("POST", base+"confirm-password-reset", "", map[string]any{"token": rt, "password": "another-pass-1", "passwordConfirm": "another-pass-1"}).status(400)
		s.do("GET", base+"records", anaTok, nil).status(401)
		s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(400)
		anaTok = s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "brand-new-pass"}).status(200).str("token")
		s.do("POST", base+"request-password-reset", "", map[string]any{"email": "ana@example.com"}).status(204)
		expired := sink.next(t, "ana@example.com")
		time.Sleep(3 * time.Second) // the collection's reset tokens live 2 s
		s.do("POST", base+"confirm-password-reset", "", map[string]any{"token": expired, "password": "x-new-pass-2", "passwordConfirm": "x-new-pass-2"}).status(400)

		// Email change: mailed to the new address, needs the password.
		s.do("POST", base+"request-email-change", "", map[string]any{"newEmail": "ana@new.example.com"}).status(401)
		s.do("POST", base+"request-email-change", anaTok, map[string]any{"newEmail": "not an email"}).status(400)
		s.do("POST", base+"request-email-change", anaTok, map[string]any{"newEmail": "ana@new.example.com"}).status(204)
		ct := sink.next(t, "ana@new.example.com")
		s.do("POST", base+"confirm-email-change", "", map[string]any{"token": ct, "password": "wrong"}).status(400)
		s.do("POST", base+"confirm-email-change", "", map[string]any{"token": ct, "password": "brand-new-pass"}).status(204)
		s.do("POST", base+"confirm-email-change", "", map[string]any{"token": ct, "password": "brand-new-pass"}).status(400)
		s.do("GET", base+"records", anaTok, nil).status(401) // sessions revoked
		tok := s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@new.example.com", "password": "brand-new-pass"}).status(200).str("token")

		// Log out everywhere.
		s.do("POST", base+"logout-all", tok, nil).status(204)
		s.do("GET", base+"records", tok, nil).status(401)
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

var codeRe = regexp.MustCompile(`code is ([0-9]+)`)

func TestOTPAndMFA(t *testing.T) {
	forEachEngine(t, func(t *testing.T, s *server) {
		sink, addr := startSMTP(t)
		host, port, _ := net.SplitHostPort(addr)
		s.do("PATCH", "/api/settings", s.su, map[string]any{"smtp": map[string]any{"host": host, "port": atoi(port), "tls": "none"}}).status(200)
		s.collection(map[string]any{"name": "users", "type": "auth", "createRule": "", "listRule": "",
			"authOptions": map[string]any{"otp": map[string]any{"enabled": true}, "mfa": map[string]any{"enabled": true}}})
		s.collection(map[string]any{"name": "plain", "type": "auth", "createRule": ""})
		s.do("POST", "/api/collections/users/records", "", map[string]any{"email": "ana@example.com", "password": "password123"}).status(200)
		base := "/api/collections/users/"
		s.do("POST", "/api/collections/plain/request-otp", "", map[string]any{"email": "x@example.com"}).status(400)

		// Password first: no token yet, an mfaId instead.
		r := s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(401)
		mfa := r.str("mfaId")
		if mfa == "" || r.body["token"] != nil {
			t.Fatalf("first factor: %s", r.raw)
		}
		// The same method twice is not a second factor.
		s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123", "mfaId": mfa}).status(400)
		r = s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123"}).status(401)
		mfa = r.str("mfaId")

		// Unknown address: an otpId all the same, and no mail.
		if id := s.do("POST", base+"request-otp", "", map[string]any{"email": "nobody@example.com"}).status(200).str("otpId"); id == "" {
			t.Errorf("no otpId for unknown email")
		}
		otp := s.do("POST", base+"request-otp", "", map[string]any{"email": "ana@example.com"}).status(200).str("otpId")
		code := sink.match(t, "ana@example.com", codeRe)
		if len(code) != 6 {
			t.Fatalf("code %q", code)
		}
		s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": "000000x", "mfaId": mfa}).status(400)
		tok := s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": code, "mfaId": mfa}).status(200).str("token")
		s.do("GET", base+"records", tok, nil).status(200)
		// Single use.
		s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": code}).status(400)

		// OTP first, then password; guesses are bounded.
		otp = s.do("POST", base+"request-otp", "", map[string]any{"email": "ana@example.com"}).status(200).str("otpId")
		code = sink.match(t, "ana@example.com", codeRe)
		r = s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": code}).status(401)
		s.do("POST", base+"auth-with-password", "", map[string]any{"identity": "ana@example.com", "password": "password123", "mfaId": r.str("mfaId")}).status(200)
		otp = s.do("POST", base+"request-otp", "", map[string]any{"email": "ana@example.com"}).status(200).str("otpId")
		code = sink.match(t, "ana@example.com", codeRe)
		for i := 0; i < 5; i++ {
			s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": "999999999"}).status(400)
		}
		s.do("POST", base+"auth-with-otp", "", map[string]any{"otpId": otp, "password": code}).status(400)
	})
}
