// Command changestream measures realtime delivery across nodes and faults,
// and webhook delivery through a failing receiver, against real `plinth
// serve` processes: it starts the nodes itself (so it can kill -9 one),
// subscribes SSE and WebSocket clients spread over them, writes from one
// writer per node to the same records, and checks what each subscriber
// received: delivered / expected, duplicates, out of order, events whose
// record is not the state that change left, and latency from the
// writer's acknowledgement to receipt. bench/changestream/run calls it.
package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	_ "github.com/jackc/pgx/v5/stdlib"
)

var (
	bin      = flag.String("bin", "", "plinth binary")
	dbURL    = flag.String("db", "", "database URL shared by the nodes (empty: one SQLite node)")
	nodesN   = flag.Int("nodes", 3, "nodes (PostgreSQL only)")
	subsN    = flag.Int("subscribers", 300, "subscribers, spread over the nodes, half SSE and half WebSocket")
	changesN = flag.Int("changes", 1200, "changes in all, split over one writer per node")
	scenario = flag.String("scenario", "steady", "steady | terminate (pg_terminate_backend on one node) | kill (kill -9 one node; its clients resume elsewhere) | webhooks")
	workDir  = flag.String("work", "", "scratch directory")
)

func main() {
	flag.Parse()
	if *dbURL == "" {
		*nodesN = 1
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var ns []*node
	for i := range *nodesN {
		ns = append(ns, startNode(i, *scenario == "webhooks"))
	}
	defer func() {
		for _, n := range ns {
			n.stop()
		}
	}()
	su := login(ns[0].url)
	post(ns[0].url+"/api/collections", su, map[string]any{"name": "items", "listRule": "", "viewRule": "", "updateRule": "", "createRule": "",
		"fields": []any{map[string]any{"name": "text", "type": "text"}, map[string]any{"name": "n", "type": "number"}}})
	if *scenario == "webhooks" {
		webhooks(ctx, ns, su)
		return
	}
	var ids []string
	for i := range 10 {
		var r struct{ ID string }
		json.Unmarshal(post(ns[0].url+"/api/collections/items/records", su, map[string]any{"text": fmt.Sprint("init ", i)}), &r)
		ids = append(ids, r.ID)
	}
	subs := make([]*subscriber, *subsN)
	for i := range subs {
		subs[i] = &subscriber{ws: i%2 == 1, node: ns[i%len(ns)], seen: map[uint64]bool{}}
		subs[i].start(ctx)
	}
	for _, s := range subs {
		<-s.ready
	}
	acks := sync.Map{} // text -> ack time
	var wg sync.WaitGroup
	per := *changesN / len(ns)
	var failed atomic.Int64
	var faults sync.WaitGroup
	stopFault := make(chan struct{})
	switch *scenario {
	case "terminate":
		faults.Add(1)
		go func() { defer faults.Done(); terminateLoop(ns[len(ns)-1], stopFault) }()
	case "kill":
		faults.Add(1)
		go func() {
			defer faults.Done()
			time.Sleep(time.Second)
			victim := ns[len(ns)-1]
			victim.kill()
			for _, s := range subs {
				if s.node == victim {
					s.moveTo(ctx, ns[0])
				}
			}
		}()
	}
	for w, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			target := n
			for i := range per {
				if target.dead.Load() {
					target = ns[0] // its writer moves on with its clients
				}
				text := fmt.Sprintf("w%d-%d", w, i)
				body, _ := json.Marshal(map[string]any{"text": text, "n": i})
				req, _ := http.NewRequest("PATCH", target.url+"/api/collections/items/records/"+ids[(i+w)%len(ids)], bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", su)
				resp, err := http.DefaultClient.Do(req)
				if err != nil || resp.StatusCode != 200 {
					failed.Add(1)
					if resp != nil {
						resp.Body.Close()
					}
					continue
				}
				resp.Body.Close()
				acks.Store(text, time.Now())
				time.Sleep(time.Duration(rand.IntN(4)) * time.Millisecond)
			}
		}()
	}
	wg.Wait()
	close(stopFault)
	faults.Wait()
	expected := 0
	acks.Range(func(any, any) bool { expected++; return true })
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		done := true
		for _, s := range subs {
			if s.count() < expected {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	report(subs, &acks, expected, failed.Load())
}

// report prints one table row for the run.
func report(subs []*subscriber, acks *sync.Map, expected int, failed int64) {
	var delivered, dupes, outOfOrder, wrongState, short int
	var lat []time.Duration
	var ref []string
	for _, s := range subs {
		s.mu.Lock()
		seq := make([]string, 0, len(s.events))
		for _, e := range s.events {
			if e.dup {
				dupes++
				continue
			}
			if e.outOfOrder {
				outOfOrder++
			}
			if at, ok := acks.Load(e.text); ok {
				delivered++
				if d := e.at.Sub(at.(time.Time)); d > 0 {
					lat = append(lat, d)
				} else {
					lat = append(lat, 0)
				}
			}
			if e.wrong {
				wrongState++
			}
			seq = append(seq, e.text)
		}
		s.mu.Unlock()
		if len(seq) < expected {
			short++
		}
		if ref == nil {
			ref = seq
		}
	}
	slices.Sort(lat)
	pct := func(p float64) string {
		if len(lat) == 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", float64(lat[int(float64(len(lat)-1)*p)].Microseconds())/1000)
	}
	fmt.Printf("| %s | %d | %d | %d / %d | %d | %d | %d | %d | %s | %s |\n", *scenario, *nodesN, len(subs), delivered, expected*len(subs), dupes, outOfOrder, wrongState, failed, pct(0.5), pct(0.99))
}

// upserted is set once the superuser exists (a restarted node keeps it).
var upserted bool

// node is one `plinth serve` process.
type node struct {
	i    int
	url  string
	cmd  *exec.Cmd
	dead atomic.Bool
}

func freePort() int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func startNode(i int, allowPrivate bool) *node {
	dir := filepath.Join(*workDir, fmt.Sprint("node", i))
	port := freePort()
	args := []string{"serve", "--dir", dir, "--http", fmt.Sprint("127.0.0.1:", port), "--max-requests-per-ip", "-1", "--auth-rate-ip", "-1"}
	if *dbURL != "" {
		u := *dbURL
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		args = append(args, "--db", u+sep+"application_name=node"+fmt.Sprint(i))
	}
	if allowPrivate {
		args = append(args, "--webhooks-allow-private", "--webhooks-retry-base", "200ms", "--webhooks-timeout", "2s", "--webhooks-lease-ttl", "3s")
	}
	if i == 0 && !upserted {
		upserted = true
		up := exec.Command(*bin, append([]string{"superuser", "upsert", "bench@example.com", "bench-password-1"}, args[1:3]...)...)
		if *dbURL != "" {
			up.Args = append(up.Args, "--db", *dbURL)
		}
		if out, err := up.CombinedOutput(); err != nil {
			panic(fmt.Sprintf("superuser: %v %s", err, out))
		}
	}
	n := &node{i: i, url: fmt.Sprint("http://127.0.0.1:", port)}
	n.cmd = exec.Command(*bin, args...)
	logf, _ := os.Create(filepath.Join(*workDir, fmt.Sprint("node", i, ".log")))
	n.cmd.Stdout, n.cmd.Stderr = logf, logf
	if err := n.cmd.Start(); err != nil {
		panic(err)
	}
	for range 200 {
		if resp, err := http.Get(n.url + "/api/health?ready=1"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	panic("node did not become ready: see " + logf.Name())
}

func (n *node) kill() {
	n.dead.Store(true)
	n.cmd.Process.Kill()
	n.cmd.Wait()
}

func (n *node) stop() {
	if !n.dead.Load() {
		n.cmd.Process.Signal(os.Interrupt)
		n.cmd.Wait()
	}
}

// terminateLoop kills the node's database connections every 300ms.
func terminateLoop(n *node, stop chan struct{}) {
	db, err := sql.Open("pgx", *dbURL)
	if err != nil {
		panic(err)
	}
	defer db.Close()
	t := time.NewTicker(300 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			db.Exec(`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE $1`, fmt.Sprintf("node%d%%", n.i))
		}
	}
}

type event struct {
	id                     uint64
	text                   string
	at                     time.Time
	dup, outOfOrder, wrong bool
}

// subscriber is one realtime client; it reconnects with its last id when
// its stream ends (as EventSource does), to its node or, once moved, to
// another.
type subscriber struct {
	ws        bool
	ready     chan struct{}
	readyOnce sync.Once

	mu     sync.Mutex
	node   *node
	events []event
	seen   map[uint64]bool
	last   uint64
	conn   io.Closer
}

func (s *subscriber) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.seen)
}

func (s *subscriber) add(id uint64, rec map[string]any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	text, _ := rec["text"].(string)
	e := event{id: id, text: text, at: time.Now(), dup: s.seen[id], outOfOrder: id <= s.last}
	var w, i int
	if _, err := fmt.Sscanf(text, "w%d-%d", &w, &i); err == nil {
		n, _ := rec["n"].(float64)
		e.wrong = int(n) != i // the record must be as this change left it
	}
	s.seen[id] = true
	s.last = max(s.last, id)
	s.events = append(s.events, e)
}

func (s *subscriber) start(ctx context.Context) {
	s.ready = make(chan struct{})
	go s.loop(ctx)
}

func (s *subscriber) moveTo(ctx context.Context, n *node) {
	s.mu.Lock()
	s.node = n
	if s.conn != nil {
		s.conn.Close()
	}
	s.mu.Unlock()
}

// loop keeps the client connected, resuming from its last id.
func (s *subscriber) loop(ctx context.Context) {
	first := true
	for ctx.Err() == nil {
		s.mu.Lock()
		n, last := s.node, s.last
		s.mu.Unlock()
		var err error
		if s.ws {
			err = s.runWS(ctx, n, last)
		} else {
			err = s.runSSE(ctx, n, last)
		}
		if first && err != nil {
			time.Sleep(50 * time.Millisecond)
			continue
		}
		first = false
		time.Sleep(100 * time.Millisecond)
	}
}

func (s *subscriber) runSSE(ctx context.Context, n *node, last uint64) error {
	req, _ := http.NewRequestWithContext(ctx, "GET", n.url+"/api/realtime", nil)
	if last > 0 {
		req.Header.Set("Last-Event-ID", strconv.FormatUint(last, 10))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	s.mu.Lock()
	s.conn = resp.Body
	s.mu.Unlock()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	var id uint64
	var name string
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "id: "):
			id, _ = strconv.ParseUint(line[4:], 10, 64)
		case strings.HasPrefix(line, "event: "):
			name = line[7:]
		case strings.HasPrefix(line, "data: "):
			var d struct {
				ClientID string         `json:"clientId"`
				Record   map[string]any `json:"record"`
			}
			json.Unmarshal([]byte(line[6:]), &d)
			switch name {
			case "plinth_connect":
				body, _ := json.Marshal(map[string]any{"clientId": d.ClientID, "subscriptions": []string{"items"}})
				r, err := http.Post(n.url+"/api/realtime", "application/json", bytes.NewReader(body))
				if err != nil || r.StatusCode != 204 {
					return fmt.Errorf("subscribe failed")
				}
				r.Body.Close()
				s.readyOnce.Do(func() { close(s.ready) })
			case "items":
				s.add(id, d.Record)
			}
		}
	}
	return sc.Err()
}

func (s *subscriber) runWS(ctx context.Context, n *node, last uint64) error {
	u := strings.Replace(n.url, "http", "ws", 1) + "/api/realtime/ws"
	if last > 0 {
		u += "?lastEventId=" + strconv.FormatUint(last, 10)
	}
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		return err
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)
	s.mu.Lock()
	s.conn = closerFunc(func() error { return conn.CloseNow() })
	s.mu.Unlock()
	msg, _ := json.Marshal(map[string]any{"type": "subscribe", "subscriptions": []string{"items"}})
	if err := conn.Write(ctx, websocket.MessageText, msg); err != nil {
		return err
	}
	for {
		_, data, err := conn.Read(ctx)
		if err != nil {
			return err
		}
		var m struct {
			Type string `json:"type"`
			ID   uint64 `json:"id"`
			Data struct {
				Record map[string]any `json:"record"`
			} `json:"data"`
		}
		json.Unmarshal(data, &m)
		switch m.Type {
		case "subscribed":
			s.readyOnce.Do(func() { close(s.ready) })
		case "event":
			s.add(m.ID, m.Data.Record)
		}
	}
}

type closerFunc func() error

func (f closerFunc) Close() error { return f() }

func login(url string) string {
	var r struct{ Token string }
	json.Unmarshal(post(url+"/api/superusers/auth-with-password", "", map[string]any{"identity": "bench@example.com", "password": "bench-password-1"}), &r)
	return r.Token
}

func post(url, tok string, body any) []byte {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", tok)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	if resp.StatusCode >= 300 {
		panic(fmt.Sprintf("POST %s: %d %s", url, resp.StatusCode, out))
	}
	return out
}

var failFor = flag.Duration("fail-for", 30*time.Second, "webhooks: the receiver fails half the requests for this long")

// webhooks registers a webhook to a receiver that fails half its requests
// for -fail-for, writes -changes records spread over the nodes while the
// first node is killed (kill -9) and restarted, then waits for every
// change to be accepted and prints what the receiver saw.
func webhooks(ctx context.Context, ns []*node, su string) {
	var mu sync.Mutex
	accepted := map[string]int{} // event id -> times accepted
	var order []uint64           // first acceptances, in arrival order
	texts := map[string]bool{}
	var attempts atomic.Int64
	start := time.Now()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		attempts.Add(1)
		body, _ := io.ReadAll(r.Body)
		if time.Since(start) < *failFor && rand.IntN(2) == 0 {
			http.Error(w, "flaky receiver", 500)
			return
		}
		var ev struct {
			ID     string         `json:"id"`
			Record map[string]any `json:"record"`
		}
		json.Unmarshal(body, &ev)
		mu.Lock()
		if accepted[ev.ID] == 0 {
			id, _ := strconv.ParseUint(ev.ID, 10, 64)
			order = append(order, id)
			t, _ := ev.Record["text"].(string)
			texts[t] = true
		}
		accepted[ev.ID]++
		mu.Unlock()
		w.WriteHeader(204)
	})}
	go srv.Serve(ln)
	defer srv.Close()
	post(ns[0].url+"/api/webhooks", su, map[string]any{"url": "http://" + ln.Addr().String() + "/hook", "collections": []string{"items"}})
	for i := range *changesN {
		n := ns[i%len(ns)]
		if n.dead.Load() {
			n = ns[(i+1)%len(ns)]
		}
		post(n.url+"/api/collections/items/records", su, map[string]any{"text": fmt.Sprint("c", i)})
		if i == *changesN/3 {
			ns[0].kill()
			if len(ns) == 1 {
				ns[0] = startNode(0, true) // the only node: back at once
			}
		}
		if i == 2**changesN/3 && ns[0].dead.Load() {
			ns[0] = startNode(0, true)
		}
		time.Sleep(*failFor / time.Duration(*changesN))
	}
	deadline := time.Now().Add(5 * time.Minute)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := len(texts)
		mu.Unlock()
		if n >= *changesN {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	dupes, inversions := 0, 0
	for _, n := range accepted {
		dupes += n - 1
	}
	for i := 1; i < len(order); i++ {
		if order[i] < order[i-1] {
			inversions++
		}
	}
	fmt.Printf("| webhooks | %d | %d / %d | %d | %d | %d | %.1f s |\n", len(ns), len(texts), *changesN, dupes, inversions, attempts.Load(), time.Since(start).Seconds())
}
