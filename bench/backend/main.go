// Command backend is the app the proxy benchmarks put behind each proxy:
// it answers every request with a fixed 100-byte body, so that the numbers
// measure the proxy, not the app; with -body FILE, with that file's bytes
// as text/html (the compression benchmark's page).
package main

import (
	"flag"
	"log"
	"net/http"
	"os"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	file := flag.String("body", "", "a file whose bytes every answer carries, as text/html")
	flag.Parse()
	body := make([]byte, 100)
	for i := range body {
		body[i] = 'x'
	}
	body[99] = '\n'
	ctype := []string{"text/plain"}
	if *file != "" {
		b, err := os.ReadFile(*file)
		if err != nil {
			log.Fatal(err)
		}
		body, ctype = b, []string{"text/html; charset=utf-8"}
	}
	n := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"] = ctype
		hdr["Content-Length"] = []string{n}
		w.Write(body)
	})
	log.Fatal((&http.Server{Addr: *addr, Handler: h}).ListenAndServe())
}
