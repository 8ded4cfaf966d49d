// Command loadgen sends steady GET and POST traffic to one URL and reports
// failures and latency, so that a reload's effect on clients can be
// measured (see bench/reload.sh).
//
// Every second it prints a line with that second's requests, failures and
// p50/p99 latency. With -phase-file, each request is labelled with the
// file's current contents (e.g. "quiet", "reload"), and the summary printed
// at the end (after -d, or on SIGINT/SIGTERM) has one line per label:
//
//	phase=reload requests=5210 failed=0 p50=1.9ms p99=7.4ms max=31.0ms
//
// Any transport error or non-2xx status is a failure; the first few are
// printed with their Gatehouse-Cause header and body.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	url := flag.String("url", "http://127.0.0.1:8080/", "URL to send requests to")
	conc := flag.Int("c", 8, "concurrent clients")
	dur := flag.Duration("d", 30*time.Second, "how long to run (0 = until SIGINT/SIGTERM)")
	postRatio := flag.Float64("post-ratio", 0.3, "fraction of requests that are POSTs with a small body")
	phaseFile := flag.String("phase-file", "", "label each request with this file's contents (re-read every 20ms)")
	timeout := flag.Duration("timeout", 30*time.Second, "per-request timeout")
	quiet := flag.Bool("q", false, "do not print per-second lines")
	failPause := flag.Duration("fail-pause", 0, "how long a client waits after a failure before its next request "+
		"(so that a refused connection does not spin the client)")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if *dur > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *dur)
		defer cancel()
	}

	r := newRecorder()
	var phase atomic.Pointer[string]
	initial := "all"
	phase.Store(&initial)
	if *phaseFile != "" {
		readPhase(*phaseFile, &phase)
		go func() {
			t := time.NewTicker(20 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
					readPhase(*phaseFile, &phase)
				}
			}
		}()
	}

	client := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: *conc, MaxIdleConns: *conc, IdleConnTimeout: 90 * time.Second},
	}
	var wg sync.WaitGroup
	for w := 0; w < *conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ctx.Err() == nil; i++ {
				ph := *phase.Load()
				post := rand.Float64() < *postRatio
				start := time.Now()
				failure := send(ctx, client, *url, post, fmt.Sprintf("loadgen %d/%d", w, i))
				if ctx.Err() != nil && failure != "" {
					return // cut short by the end of the run: not the server's fault
				}
				r.record(ph, time.Since(start), failure)
				if failure != "" && *failPause > 0 {
					time.Sleep(*failPause)
				}
			}
		}()
	}

	if !*quiet {
		go r.perSecond(ctx, &phase)
	}
	<-ctx.Done()
	wg.Wait()
	client.CloseIdleConnections()
	r.summary(os.Stdout)
}

func readPhase(path string, phase *atomic.Pointer[string]) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	s := strings.TrimSpace(string(b))
	if s != "" && s != *phase.Load() {
		phase.Store(&s)
	}
}

// send does one request; it returns "" on success, else what went wrong.
func send(ctx context.Context, c *http.Client, url string, post bool, body string) string {
	method := http.MethodGet
	var rd io.Reader
	if post {
		method = http.MethodPost
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err.Error()
	}
	resp, err := c.Do(req)
	if err != nil {
		return fmt.Sprintf("%s: %v", method, err)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if err != nil {
		return fmt.Sprintf("%s: %d, reading body: %v", method, resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		s := strings.TrimSpace(string(b))
		if len(s) > 160 {
			s = s[:160] + "…"
		}
		return fmt.Sprintf("%s: status %d, Gatehouse-Cause %q, body %q", method, resp.StatusCode, resp.Header.Get("Gatehouse-Cause"), s)
	}
	return ""
}

// recorder keeps every latency, per phase and per second.
type recorder struct {
	mu      sync.Mutex
	phases  []string
	byPhase map[string]*stats
	second  *stats
	first   []string
}

type stats struct {
	lat    []time.Duration
	failed int
}

func newRecorder() *recorder {
	return &recorder{byPhase: map[string]*stats{}, second: &stats{}}
}

func (r *recorder) record(phase string, d time.Duration, failure string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.byPhase[phase]
	if s == nil {
		s = &stats{}
		r.byPhase[phase] = s
		r.phases = append(r.phases, phase)
	}
	s.lat = append(s.lat, d)
	r.second.lat = append(r.second.lat, d)
	if failure != "" {
		s.failed++
		r.second.failed++
		if len(r.first) < 5 {
			r.first = append(r.first, fmt.Sprintf("%s [%s] %s", time.Now().Format("15:04:05.000"), phase, failure))
		}
	}
}

func (r *recorder) perSecond(ctx context.Context, phase *atomic.Pointer[string]) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	began := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		r.mu.Lock()
		s := r.second
		r.second = &stats{}
		r.mu.Unlock()
		p50, p99, _ := s.percentiles()
		fmt.Printf("t=%3.0fs phase=%-7s requests=%d failed=%d p50=%s p99=%s\n", time.Since(began).Seconds(), *phase.Load(), len(s.lat), s.failed, ms(p50), ms(p99))
	}
}

func (s *stats) percentiles() (p50, p99, maxd time.Duration) {
	if len(s.lat) == 0 {
		return 0, 0, 0
	}
	l := slices.Clone(s.lat)
	slices.Sort(l)
	at := func(q float64) time.Duration { return l[min(len(l)-1, int(q*float64(len(l))))] }
	return at(0.50), at(0.99), l[len(l)-1]
}

func (r *recorder) summary(w io.Writer) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var total, failed int
	for _, ph := range r.phases {
		s := r.byPhase[ph]
		p50, p99, mx := s.percentiles()
		total += len(s.lat)
		failed += s.failed
		fmt.Fprintf(w, "phase=%s requests=%d failed=%d p50=%s p99=%s max=%s\n", ph, len(s.lat), s.failed, ms(p50), ms(p99), ms(mx))
	}
	fmt.Fprintf(w, "total requests=%d failed=%d\n", total, failed)
	for _, f := range r.first {
		fmt.Fprintf(w, "failure: %s\n", f)
	}
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1fms", float64(d)/float64(time.Millisecond)) }
