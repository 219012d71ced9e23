package main

import (
	"bytes"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the real plinth command once per test run.
func binary(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "plinth-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "plinth")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = err
			t.Logf("%s", out)
		}
	})
	if buildErr != nil {
		t.Fatalf("build: %v", buildErr)
	}
	return binPath
}

func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := exec.Command(binary(t), args...).CombinedOutput()
	return string(out), err
}

func TestHelpAndVersion(t *testing.T) {
	for _, args := range [][]string{{"--help"}, {"serve", "--help"}, {"superuser", "--help"}, {"superuser", "upsert", "--help"}, {"superuser", "delete", "--help"}, {"version", "--help"}} {
		out, err := run(t, args...)
		if err != nil || !strings.Contains(out, "Usage:") {
			t.Errorf("%v: %v %s", args, err, out)
		}
	}
	if out, err := run(t, "version"); err != nil || !strings.HasPrefix(out, "plinth ") {
		t.Errorf("version: %v %q", err, out)
	}
	if _, err := run(t, "no-such-command"); err == nil {
		t.Errorf("unknown command succeeded")
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func TestServeSuperuserAndGracefulShutdown(t *testing.T) {
	dir := t.TempDir()
	if out, err := run(t, "superuser", "upsert", "--dir", dir, "admin@example.com", "short"); err == nil {
		t.Fatalf("short password accepted: %s", out)
	}
	if out, err := run(t, "superuser", "upsert", "--dir", dir, "admin@example.com", "long-enough-pass"); err != nil {
		t.Fatalf("upsert: %v %s", err, out)
	}
	addr := freePort(t)
	cmd := exec.Command(binary(t), "serve", "--dir", dir, "--http", addr)
	var logs bytes.Buffer
	cmd.Stderr = &logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + addr
	up := false
	for i := 0; i < 100 && !up; i++ {
		if resp, err := http.Get(base + "/api/health"); err == nil {
			resp.Body.Close()
			up = resp.StatusCode == 200
		} else {
			time.Sleep(50 * time.Millisecond)
		}
	}
	if !up {
		cmd.Process.Kill()
		t.Fatalf("server did not come up: %s", logs.String())
	}
	body := `{"identity":"admin@example.com","password":"long-enough-pass"}`
	resp, err := http.Post(base+"/api/superusers/auth-with-password", "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("login: %v %v", err, resp)
	}
	var tok struct{ Token string }
	json.NewDecoder(resp.Body).Decode(&tok)
	resp.Body.Close()
	req, _ := http.NewRequest("POST", base+"/api/collections", strings.NewReader(`{"name":"notes","fields":[{"name":"t","type":"text"}]}`))
	req.Header.Set("Authorization", "Bearer "+tok.Token)
	req.Header.Set("Content-Type", "application/json")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Fatalf("create collection: %v %v", err, resp)
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v\n%s", err, logs.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("no exit after SIGTERM")
	}
	// A clean close checkpoints the WAL into the main file.
	if fi, err := os.Stat(filepath.Join(dir, "data.db-wal")); err == nil && fi.Size() > 0 {
		t.Errorf("WAL not checkpointed on shutdown: %d bytes", fi.Size())
	}
	if out, err := run(t, "superuser", "delete", "--dir", dir, "admin@example.com"); err != nil {
		t.Fatalf("delete: %v %s", err, out)
	}
	if _, err := run(t, "superuser", "delete", "--dir", dir, "admin@example.com"); err == nil {
		t.Errorf("deleting a missing superuser succeeded")
	}
}
