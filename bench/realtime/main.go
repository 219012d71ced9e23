// Command realtime measures Plinth's realtime fan-out against a live
// server: N SSE subscribers on 127.0.0.1, one writer at a steady rate.
// It prints delivery latency (from the writer's acknowledgement to
// receipt), server memory per idle subscriber and server CPU.
// bench/realtime/run builds and starts the server and calls this.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8090", "Plinth base URL")
	pid := flag.Int("pid", 0, "server process id (for RSS and CPU)")
	levels := flag.String("subscribers", "1000,5000,10000", "subscriber counts to measure")
	rate := flag.Int("rate", 20, "writes per second")
	dur := flag.Duration("duration", 10*time.Second, "write phase per level")
	email := flag.String("email", "bench@example.com", "superuser email")
	password := flag.String("password", "bench-password-1", "superuser password")
	flag.Parse()
	var lim syscall.Rlimit
	syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim)
	lim.Cur = lim.Max
	syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim)

	tok := login(*url, *email, *password)
	post(*url+"/api/collections", tok, map[string]any{"name": "feed", "listRule": "", "viewRule": "", "createRule": "",
		"fields": []any{map[string]any{"name": "text", "type": "text"}}})
	fmt.Printf("| subscribers | connected | delivered | p50 ms | p99 ms | max ms | RSS per idle subscriber | server CPU (write phase) |\n")
	fmt.Printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, l := range strings.Split(*levels, ",") {
		n, _ := strconv.Atoi(strings.TrimSpace(l))
		runLevel(*url, tok, *pid, n, *rate, *dur)
	}
}

type sub struct {
	resp *http.Response
	recv []int64 // receipt time (unix ns) by write index, 0 = not received
}

// runLevel runs one load level: subscribers, the writer, and the
// collection of receipts, timed together (a benchmark driver, kept whole
// so its phases read in order).
func runLevel(url, tok string, pid, n, rate int, dur time.Duration) {
	writes := int(dur.Seconds() * float64(rate))
	runtimeGC()
	time.Sleep(time.Second)
	rss0 := rss(pid)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
	subs := make([]*sub, n)
	var connected atomic.Int64
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range subs {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			s := &sub{recv: make([]int64, writes)}
			resp, err := client.Get(url + "/api/realtime")
			if err != nil {
				return
			}
			br := bufio.NewReaderSize(resp.Body, 4096)
			id := ""
			for id == "" {
				line, err := br.ReadString('\n')
				if err != nil {
					return
				}
				if strings.HasPrefix(line, "data: ") {
					var m map[string]string
					json.Unmarshal([]byte(line[6:]), &m)
					id = m["clientId"]
				}
			}
			if post(url+"/api/realtime", "", map[string]any{"clientId": id, "subscriptions": []string{"feed"}}) != nil {
				return
			}
			s.resp = resp
			subs[i] = s
			connected.Add(1)
			go read(br, s)
		}(i)
	}
	wg.Wait()
	runtimeGC()
	time.Sleep(2 * time.Second)
	rss1 := rss(pid)
	perSub := float64(rss1-rss0) / float64(max(1, connected.Load()))

	acks := make([]int64, writes)
	cpu0 := cpuTime(pid)
	start := time.Now()
	tick := time.NewTicker(time.Second / time.Duration(rate))
	for i := 0; i < writes; i++ {
		<-tick.C
		if post(url+"/api/collections/feed/records", "", map[string]any{"text": "w" + strconv.Itoa(i)}) == nil {
			acks[i] = time.Now().UnixNano()
		}
	}
	tick.Stop()
	time.Sleep(2 * time.Second) // let the last events arrive
	wall := time.Since(start)
	cpu := cpuTime(pid) - cpu0

	var lat []float64
	delivered := 0
	for _, s := range subs {
		if s == nil {
			continue
		}
		for i, t := range s.recv {
			if t == 0 || acks[i] == 0 {
				continue
			}
			delivered++
			lat = append(lat, max(0, float64(t-acks[i]))/1e6)
		}
		s.resp.Body.Close()
	}
	slices.Sort(lat)
	pct := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[min(len(lat)-1, int(p*float64(len(lat))))]
	}
	fmt.Printf("| %d | %d | %d / %d | %.1f | %.1f | %.1f | %.1f KiB | %.0f%% of one core |\n", n, connected.Load(), delivered,
		int(connected.Load())*writes, pct(0.5), pct(0.99), pct(1), perSub/1024, 100*cpu.Seconds()/wall.Seconds())
	time.Sleep(2 * time.Second)
}

func read(br *bufio.Reader, s *sub) {
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return
		}
		if bytes.HasPrefix(line, []byte("data: ")) {
			if i := bytes.Index(line, []byte(`"text":"w`)); i >= 0 {
				rest := line[i+9:]
				j := bytes.IndexByte(rest, '"')
				if k, err := strconv.Atoi(string(rest[:j])); err == nil && k < len(s.recv) {
					s.recv[k] = time.Now().UnixNano()
				}
			}
		}
	}
}

func login(url, email, password string) string {
	var out struct{ Token string }
	b, _ := json.Marshal(map[string]string{"identity": email, "password": password})
	resp, err := http.Post(url+"/api/superusers/auth-with-password", "application/json", bytes.NewReader(b))
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	json.NewDecoder(resp.Body).Decode(&out)
	return out.Token
}

var poster = &http.Client{Timeout: 30 * time.Second}

func post(url, tok string, body any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest("POST", url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := poster.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s: %d", url, resp.StatusCode)
	}
	return nil
}

// rss reads the server's resident set size in bytes.
func rss(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// cpuTime reads the server's user+system CPU time.
func cpuTime(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}

// runtimeGC asks nothing of the server; it only lets this process's own
// connection churn settle before a memory reading.
func runtimeGC() { time.Sleep(200 * time.Millisecond) }
