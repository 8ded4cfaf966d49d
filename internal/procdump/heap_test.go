package procdump

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

// TestHeapSnapshotOfNodeLoads takes a heap snapshot of node, idle or in
// a busy loop, which must be the JSON DevTools loads (its snapshot.meta
// describes the rest).
func TestHeapSnapshotOfNodeLoads(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src      string
		stayOpen bool // the inspector cannot be closed: the loop never yields
	}{
		{"idle", nodeIdle, false},
		{"busy", nodeBusy, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := startNode(t, tc.src)
			before := len(listeners(a.pid()))
			var out bytes.Buffer
			res, err := Take(context.Background(), KindHeap, a.pid(), &out, Options{})
			if err != nil {
				t.Fatalf("Take: %v", err)
			}
			var snap struct {
				Snapshot struct {
					Meta struct {
						NodeFields []string `json:"node_fields"`
					} `json:"meta"`
					NodeCount int `json:"node_count"`
				} `json:"snapshot"`
			}
			if err := json.Unmarshal(out.Bytes(), &snap); err != nil {
				t.Fatalf("the snapshot is not JSON: %v", err)
			}
			if len(snap.Snapshot.Meta.NodeFields) == 0 || snap.Snapshot.NodeCount == 0 {
				t.Errorf("the snapshot has no snapshot.meta.node_fields or no nodes: %.200s", out.String())
			}
			if res.Tool != "node inspector" || res.Format != "heapsnapshot" || res.Paused <= 0 || strings.Contains(res.Note, "stays open") != tc.stayOpen {
				t.Errorf("Result = %+v, want the inspector's heapsnapshot with its pause, the inspector left open: %v", res, tc.stayOpen)
			}
			t.Logf("heap snapshot: paused %v, %d KB, %d nodes", res.Paused.Round(time.Millisecond), out.Len()>>10, snap.Snapshot.NodeCount)
			if !tc.stayOpen {
				waitListeners(t, a.pid(), before)
			}
			if why := a.notRunning(); why != "" {
				t.Errorf("node does not run after the snapshot: %s", why)
			}
		})
	}
}

// A heap snapshot cut short by its timeout, at any step (before the
// inspector answers, mid-command, mid-snapshot), still closes the
// inspector it opened, and node runs on: one left open would let any
// local user run code as the app, and a session cut mid-write once
// crashed node when the inspector was then closed.
func TestHeapSnapshotCutShortClosesTheInspector(t *testing.T) {
	for _, timeout := range []time.Duration{time.Millisecond, 10 * time.Millisecond, 30 * time.Millisecond,
		50 * time.Millisecond, 80 * time.Millisecond, 120 * time.Millisecond, 200 * time.Millisecond} {
		t.Run(timeout.String(), func(t *testing.T) {
			a := startNode(t, nodeIdle)
			before := len(listeners(a.pid()))
			_, err := Take(context.Background(), KindHeap, a.pid(), io.Discard, Options{Timeout: timeout})
			if err == nil && timeout <= 50*time.Millisecond {
				t.Fatalf("a %v heap snapshot did not time out; make the heap larger", timeout)
			}
			if len(listeners(a.pid())) != before {
				t.Errorf("listening on %v after the dump returned, want the inspector closed", listeners(a.pid()))
			}
			if why := a.notRunning(); why != "" {
				t.Errorf("node does not run after the snapshot: %s", why)
			}
		})
	}
}

// TestHeapOfPythonIsUnsupported: only node's inspector takes one.
func TestHeapOfPythonIsUnsupported(t *testing.T) {
	a := startSystemPython(t)
	_, err := Take(context.Background(), KindHeap, a.pid(), &bytes.Buffer{}, Options{})
	var unsupported *UnsupportedError
	if !errors.As(err, &unsupported) || unsupported.Runtime != RuntimePython {
		t.Errorf("Take = %v, want an UnsupportedError for python", err)
	}
}

// When the dump's own session is gone before it could close the
// inspector (a write cut short by the dump's end closes the
// connection), the inspector is closed over a new session.
func TestInspectorClosedOverANewSession(t *testing.T) {
	a := startNode(t, nodeIdle)
	before := len(listeners(a.pid()))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tg, err := watch(ctx, a.pid())
	if err != nil {
		t.Fatal(err)
	}
	defer tg.stop()
	d, err := openInspector(tg)
	if err != nil {
		t.Fatal(err)
	}
	if len(listeners(a.pid())) == before {
		t.Fatal("no inspector opened")
	}
	d.conn.CloseNow()
	var res Result
	d.finish(tg, &res)
	if len(listeners(a.pid())) != before || res.Note != "" {
		t.Errorf("listening on %v, note %q after finish: want the inspector closed", listeners(a.pid()), res.Note)
	}
}
