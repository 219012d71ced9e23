// Command benchtool supports bench/run: a bare net/http baseline server,
// a seeder that fills a live Plinth over HTTP, and a table printer for
// wrk results.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool bare|seed|table ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bare":
		err = bare(os.Args[2:])
	case "seed":
		err = seed(os.Args[2:])
	case "table":
		err = table(os.Args[2:])
	case "tokens":
		err = tokens(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// bare serves a fixed JSON document: the ceiling any Go HTTP API on this
// machine can reach, against which Plinth's figures are read.
func bare(args []string) error {
	fs := flag.NewFlagSet("bare", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:8099", "listen address")
	fs.Parse(args)
	body := []byte(`{"id":"abc123def456ghi","collectionName":"items","text":"hello world","likes":42}`)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	return http.ListenAndServe(*addr, mux)
}

func post(client *http.Client, url, token string, body any) (map[string]any, error) {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("POST %s: %d %s", url, resp.StatusCode, raw)
	}
	var out map[string]any
	return out, json.Unmarshal(raw, &out)
}

// seed creates the "items" collection and n records, writing their ids
// (one per line) to -ids for the wrk scripts.
func seed(args []string) error {
	fs := flag.NewFlagSet("seed", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8090", "Plinth base URL")
	email := fs.String("email", "bench@example.com", "superuser email")
	password := fs.String("password", "bench-password-1", "superuser password")
	n := fs.Int("records", 10000, "records to create")
	idsFile := fs.String("ids", "ids.txt", "where to write record ids")
	workers := fs.Int("workers", 8, "concurrent writers")
	fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second}
	auth, err := post(client, *url+"/api/superusers/auth-with-password", "", map[string]any{"identity": *email, "password": *password})
	if err != nil {
		return err
	}
	tok := auth["token"].(string)
	_, err = post(client, *url+"/api/collections", tok, map[string]any{
		"name": "items", "listRule": "", "viewRule": "", "createRule": "",
		"fields": []any{
			map[string]any{"name": "text", "type": "text", "max": 280},
			map[string]any{"name": "author", "type": "text"},
			map[string]any{"name": "likes", "type": "number", "onlyInt": true},
			map[string]any{"name": "tags", "type": "select", "values": []string{"go", "sql", "web", "ops"}, "maxSelect": 4},
		},
		"indexes": []any{
			map[string]any{"name": "idx_items_created", "columns": []string{"created"}},
			map[string]any{"name": "idx_items_author", "columns": []string{"author", "created"}},
		},
	})
	if err != nil {
		return err
	}
	start := time.Now()
	ids := make([]string, *n)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	next := make(chan int)
	for w := 0; w < *workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				r := rand.New(rand.NewPCG(uint64(i), 7))
				rec, err := post(client, *url+"/api/collections/items/records", "", map[string]any{
					"text": fmt.Sprintf("item %d says hello to the benchmark", i), "author": fmt.Sprintf("user%03d", r.IntN(500)),
					"likes": r.IntN(1000), "tags": []string{[]string{"go", "sql", "web", "ops"}[r.IntN(4)]},
				})
				mu.Lock()
				if err != nil && firstErr == nil {
					firstErr = err
				}
				if err == nil {
					ids[i] = rec["id"].(string)
				}
				mu.Unlock()
			}
		}()
	}
	for i := 0; i < *n; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	fmt.Fprintf(os.Stderr, "seeded %d records in %s (%.0f/s over HTTP)\n", *n, time.Since(start).Round(time.Millisecond), float64(*n)/time.Since(start).Seconds())
	return os.WriteFile(*idsFile, []byte(strings.Join(ids, "\n")+"\n"), 0o644)
}

// tokens logs in as the first n seeded demo users and writes
// "userId token" lines for the microblog wrk script.
func tokens(args []string) error {
	fs := flag.NewFlagSet("tokens", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:8090", "Plinth base URL")
	n := fs.Int("users", 200, "users to log in")
	password := fs.String("password", "microblog-demo", "demo user password")
	out := fs.String("out", "tokens.txt", "output file")
	fs.Parse(args)
	client := &http.Client{Timeout: 30 * time.Second}
	lines := make([]string, *n)
	var wg sync.WaitGroup
	errs := make(chan error, *n)
	sem := make(chan struct{}, 4)
	for i := 0; i < *n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			r, err := post(client, *url+"/api/collections/users/auth-with-password", "", map[string]any{
				"identity": fmt.Sprintf("user%05d@example.com", i+1), "password": *password})
			if err != nil {
				errs <- err
				return
			}
			lines[i] = r["record"].(map[string]any)["id"].(string) + " " + r["token"].(string)
		}(i)
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return os.WriteFile(*out, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
}

var (
	reqsRe  = regexp.MustCompile(`Requests/sec:\s+([\d.]+)`)
	p50Re   = regexp.MustCompile(`\s50%\s+([\d.]+)(us|ms|s)`)
	p99Re   = regexp.MustCompile(`\s99%\s+([\d.]+)(us|ms|s)`)
	errRe   = regexp.MustCompile(`Non-2xx or 3xx responses: (\d+)`)
	codesRe = regexp.MustCompile(`Status codes: (.*)`)
	sockRe  = regexp.MustCompile(`Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

func ms(m []string) float64 {
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	switch m[2] {
	case "us":
		return v / 1000
	case "s":
		return v * 1000
	}
	return v
}

// table reads wrk outputs named NAME.txt (bare.txt is the baseline) from
// a directory and prints a markdown table in the order given.
func table(args []string) error {
	fs := flag.NewFlagSet("table", flag.ExitOnError)
	dir := fs.String("dir", ".", "directory of wrk outputs")
	title := fs.String("title", "", "table title")
	fs.Parse(args)
	type row struct {
		name          string
		rps, p50, p99 float64
		errs          int
		raw           string
	}
	var codes []string
	read := func(name string) (row, error) {
		f, err := os.ReadFile(*dir + "/" + name + ".txt")
		if err != nil {
			return row{}, err
		}
		s := string(f)
		r := row{name: name, raw: s}
		if m := reqsRe.FindStringSubmatch(s); m != nil {
			r.rps, _ = strconv.ParseFloat(m[1], 64)
		}
		r.p50, r.p99 = ms(p50Re.FindStringSubmatch(s)), ms(p99Re.FindStringSubmatch(s))
		if m := errRe.FindStringSubmatch(s); m != nil {
			r.errs, _ = strconv.Atoi(m[1])
		}
		if m := sockRe.FindStringSubmatch(s); m != nil {
			for _, x := range m[1:] {
				n, _ := strconv.Atoi(x)
				r.errs += n
			}
		}
		return r, nil
	}
	base, err := read("bare")
	if err != nil {
		return err
	}
	w := bufio.NewWriter(os.Stdout)
	defer w.Flush()
	if *title != "" {
		fmt.Fprintf(w, "\n%s\n\n", *title)
	}
	fmt.Fprintln(w, "| scenario | req/s | p50 ms | p99 ms | errors | vs bare net/http |")
	fmt.Fprintln(w, "|---|---:|---:|---:|---:|---:|")
	for _, name := range append(fs.Args(), "bare") {
		r, err := read(name)
		if err != nil {
			continue
		}
		fmt.Fprintf(w, "| %s | %.0f | %.2f | %.2f | %d | %.1f%% |\n", r.name, r.rps, r.p50, r.p99, r.errs, 100*r.rps/base.rps)
		if m := codesRe.FindStringSubmatch(r.raw); m != nil {
			codes = append(codes, r.name+": "+m[1])
		}
	}
	for _, c := range codes {
		fmt.Fprintf(w, "\nstatus codes, %s\n", c)
	}
	return nil
}
