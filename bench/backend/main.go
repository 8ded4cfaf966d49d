// Command backend is the app the proxy benchmarks put behind each proxy:
// it answers every request with a fixed 100-byte body, so that the numbers
// measure the proxy, not the app.
package main

import (
	"flag"
	"log"
	"net/http"
	"strconv"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9000", "listen address")
	flag.Parse()
	body := make([]byte, 100)
	for i := range body {
		body[i] = 'x'
	}
	body[99] = '\n'
	n := strconv.Itoa(len(body))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := w.Header()
		hdr["Content-Type"] = []string{"text/plain"}
		hdr["Content-Length"] = []string{n}
		w.Write(body)
	})
	log.Fatal((&http.Server{Addr: *addr, Handler: h}).ListenAndServe())
}
