// Package mail sends email over SMTP and renders the templates of the
// auth flows. SMTP settings live in the database (see core settings), so
// every node sends with the same configuration.
package mail

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"mime"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"net/smtp"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"
)

// SMTP is the outgoing mail server.
type SMTP struct {
	Host     string `json:"host"`
	Port     int    `json:"port"`
	TLS      string `json:"tls"` // "starttls" (default), "tls" (implicit), "none" (loopback only)
	Username string `json:"username"`
	Password string `json:"password,omitempty"`
}

// Message is one email.
type Message struct {
	FromName, From, To  string
	Subject, HTML, Text string
}

// ErrNotConfigured is returned when no SMTP host is set.
var ErrNotConfigured = errors.New("email delivery is not configured (set SMTP in the settings)")

// Send delivers m. Credentials are only ever sent over TLS, or to a
// server on the loopback interface.
func Send(ctx context.Context, cfg SMTP, m Message) error {
	if cfg.Host == "" {
		return ErrNotConfigured
	}
	port := cfg.Port
	if port == 0 {
		port = 587
		if cfg.TLS == "tls" {
			port = 465
		}
	}
	addr := net.JoinHostPort(cfg.Host, strconv.Itoa(port))
	d := net.Dialer{Timeout: 10 * time.Second}
	var conn net.Conn
	var err error
	if cfg.TLS == "tls" {
		conn, err = tls.DialWithDialer(&d, "tcp", addr, &tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12})
	} else {
		conn, err = d.DialContext(ctx, "tcp", addr)
	}
	if err != nil {
		return fmt.Errorf("smtp: connect %s: %w", addr, err)
	}
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	c, err := smtp.NewClient(conn, cfg.Host)
	if err != nil {
		conn.Close()
		return fmt.Errorf("smtp: %w", err)
	}
	defer c.Close()
	if cfg.TLS == "" || cfg.TLS == "starttls" {
		if ok, _ := c.Extension("STARTTLS"); ok {
			if err := c.StartTLS(&tls.Config{ServerName: cfg.Host, MinVersion: tls.VersionTLS12}); err != nil {
				return fmt.Errorf("smtp: starttls: %w", err)
			}
		} else if cfg.TLS == "starttls" || !isLoopback(cfg.Host) {
			return errors.New("smtp: the server does not offer STARTTLS")
		}
	}
	if cfg.Username != "" {
		// net/smtp refuses PLAIN auth without TLS except to localhost.
		if err := c.Auth(smtp.PlainAuth("", cfg.Username, cfg.Password, cfg.Host)); err != nil {
			return fmt.Errorf("smtp: auth: %w", err)
		}
	}
	if err := c.Mail(m.From); err != nil {
		return fmt.Errorf("smtp: MAIL FROM: %w", err)
	}
	if err := c.Rcpt(m.To); err != nil {
		return fmt.Errorf("smtp: RCPT TO: %w", err)
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := w.Write(Compose(m)); err != nil {
		return err
	}
	if err := w.Close(); err != nil {
		return err
	}
	// The server has accepted the message: a failed QUIT must not make
	// the queue send it again.
	c.Quit()
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Compose renders m as a multipart/alternative MIME message.
func Compose(m Message) []byte {
	var b bytes.Buffer
	boundary := randomHex(12)
	from := (&mail.Address{Name: m.FromName, Address: m.From}).String()
	hdr := func(k, v string) { b.WriteString(k + ": " + v + "\r\n") }
	hdr("From", from)
	hdr("To", (&mail.Address{Address: m.To}).String())
	hdr("Subject", mime.QEncoding.Encode("utf-8", m.Subject))
	hdr("Date", time.Now().UTC().Format(time.RFC1123Z))
	hdr("Message-ID", "<"+randomHex(16)+"@"+domainOf(m.From)+">")
	hdr("MIME-Version", "1.0")
	hdr("Content-Type", `multipart/alternative; boundary="`+boundary+`"`)
	b.WriteString("\r\n")
	for _, p := range []struct{ ctype, body string }{{"text/plain", m.Text}, {"text/html", m.HTML}} {
		if p.body == "" {
			continue
		}
		b.WriteString("--" + boundary + "\r\n")
		hdr("Content-Type", p.ctype+"; charset=utf-8")
		hdr("Content-Transfer-Encoding", "quoted-printable")
		b.WriteString("\r\n")
		qp := quotedprintable.NewWriter(&b)
		qp.Write([]byte(p.body))
		qp.Close()
		b.WriteString("\r\n")
	}
	b.WriteString("--" + boundary + "--\r\n")
	return b.Bytes()
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return "localhost"
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Template is one editable email: subject, HTML and text bodies, using
// Go template syntax with the fields of Data.
type Template struct {
	Subject string `json:"subject"`
	HTML    string `json:"html"`
	Text    string `json:"text"`
}

// Data is what a template can use.
type Data struct {
	AppName, AppURL, Email, Token, Link, Code string
}

// Render fills t with d; HTML is escaped contextually.
func (t Template) Render(d Data) (subject, html, text string, err error) {
	render := func(src string) (string, error) {
		tt, err := texttemplate.New("").Option("missingkey=error").Parse(src)
		if err != nil {
			return "", err
		}
		var b bytes.Buffer
		err = tt.Execute(&b, d)
		return b.String(), err
	}
	if subject, err = render(t.Subject); err != nil {
		return
	}
	if text, err = render(t.Text); err != nil {
		return
	}
	ht, err := htmltemplate.New("").Parse(t.HTML)
	if err != nil {
		return
	}
	var b bytes.Buffer
	err = ht.Execute(&b, d)
	return strings.ReplaceAll(subject, "\n", " "), b.String(), text, err
}

// Defaults are the templates used until a superuser edits them.
var Defaults = map[string]Template{
	"otp": {
		Subject: "Your {{.AppName}} login code",
		Text:    "Your one-time login code is {{.Code}}\n\nIt expires in a few minutes. If you did not try to log in, ignore this email.\n",
		HTML:    `<p>Your one-time login code is <b>{{.Code}}</b></p><p>It expires in a few minutes. If you did not try to log in, ignore this email.</p>`,
	},
	"verification": {
		Subject: "Verify your {{.AppName}} email",
		Text:    "Confirm your email address by opening this link:\n\n{{.Link}}\n\nIf you did not sign up, ignore this email.\n",
		HTML:    `<p>Confirm your email address:</p><p><a href="{{.Link}}">Verify {{.Email}}</a></p><p>If you did not sign up, ignore this email.</p>`,
	},
	"passwordReset": {
		Subject: "Reset your {{.AppName}} password",
		Text:    "Choose a new password here:\n\n{{.Link}}\n\nThe link expires soon. If you did not ask for this, ignore this email.\n",
		HTML:    `<p>Choose a new password:</p><p><a href="{{.Link}}">Reset password</a></p><p>If you did not ask for this, ignore this email.</p>`,
	},
	"emailChange": {
		Subject: "Confirm your new {{.AppName}} email",
		Text:    "Confirm {{.Email}} as your new email address:\n\n{{.Link}}\n\nIf you did not ask for this, ignore this email.\n",
		HTML:    `<p>Confirm <b>{{.Email}}</b> as your new email address:</p><p><a href="{{.Link}}">Confirm new email</a></p>`,
	},
}
