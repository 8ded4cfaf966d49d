package admin

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/gatehouse/gatehouse/internal/telemetry"
)

// dumpTail is how many lines of each log a dump keeps.
const (
	dumpAccessLines   = 1000
	dumpInstanceLines = 200
)

// dump serves GET /api/dump: a tar.gz bundle for a bug report, with every
// secret redacted.
func (d Deps) dump(w http.ResponseWriter, r *http.Request) {
	name := "gatehouse-dump-" + time.Now().UTC().Format("20060102-150405")
	w.Header().Set("Content-Type", "application/gzip")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`.tar.gz"`)
	gz := gzip.NewWriter(w)
	tw := tar.NewWriter(gz)
	add := func(path string, data []byte) {
		tw.WriteHeader(&tar.Header{Name: name + "/" + path, Mode: 0o644, Size: int64(len(data)), ModTime: time.Now()})
		tw.Write(data)
	}
	addJSON := func(path string, v any) {
		b, _ := json.MarshalIndent(v, "", "  ")
		add(path, b)
	}
	// Every secret the config's tags name (see config.SecretTag) is
	// redacted, a field added later included.
	addJSON("config.json", d.Config.Redacted())
	addJSON("status.json", StatusResponse{Apps: d.Supervisor.Status()})
	addJSON("events.json", d.Events.Since(time.Now().Add(-24*time.Hour)))
	addJSON("processes.json", d.processList())
	add("access.log", tailFile(filepath.Join(d.DataDir, "access.log"), dumpAccessLines))
	logs, _ := filepath.Glob(filepath.Join(d.DataDir, "logs", "*", "*.log"))
	for _, l := range logs {
		rel, _ := filepath.Rel(d.DataDir, l)
		add(rel, tailFile(l, dumpInstanceLines))
	}
	var g bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&g, 2)
	add("goroutines.txt", g.Bytes())
	tw.Close()
	gz.Close()
}

// DumpFiles lists the files every dump contains, besides one log per
// instance under logs/.
var DumpFiles = []string{"config.json", "status.json", "events.json", "processes.json", "access.log", "goroutines.txt"}

// tailFile returns the last n lines of a file, or a note why it could not.
func tailFile(path string, n int) []byte {
	f, err := os.Open(path)
	if err != nil {
		return []byte("(" + err.Error() + ")\n")
	}
	defer f.Close()
	var ring []string
	// A line longer than telemetry.MaxLine is left out, rather than
	// ending the read there and keeping the lines before it.
	err = telemetry.ReadLines(f, func(line []byte) {
		ring = append(ring, string(line))
		if len(ring) > n {
			ring = ring[1:]
		}
	})
	out := []byte(strings.Join(ring, "\n") + "\n")
	if err != nil {
		out = append(out, "("+err.Error()+")\n"...)
	}
	return out
}
