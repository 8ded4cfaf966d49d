package front

import (
	"net/http"
	"testing"
	"time"
)

// TestIdleConnectionsReclaimed: with every connection slot held by
// kept-alive connections waiting for their next request, a new client is
// served at once: the connection idle longest gives up its slot (closed),
// the others are left alone. A connection whose request is being served
// is never taken: then the new client waits for a slot.
func TestIdleConnectionsReclaimed(t *testing.T) {
	t.Parallel()
	for _, parked := range []bool{false, true} {
		name := "idle on its goroutine"
		if parked {
			name = "parked"
		}
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			st := &limStub{}
			s, addr := parkServe(t, st, Options{MaxConnections: 2, KeepaliveTimeout: time.Minute})
			var held []*limClient
			for i := range 2 {
				lc := limDial(t, addr)
				lc.send("GET /a HTTP/1.1\r\nHost: a\r\n\r\n")
				if resp, _ := lc.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || resp.Close {
					t.Fatalf("holder: %d close=%v", resp.StatusCode, resp.Close)
				}
				awaitIdle(t, s, i+1)
				held = append(held, lc)
				if parked {
					waitParked(t, s, i+1)
				}
			}
			start := time.Now()
			nc := limDial(t, addr)
			nc.send("GET /b HTTP/1.1\r\nHost: a\r\n\r\n")
			resp, body := nc.mustResponse(5 * time.Second)
			if resp.StatusCode != http.StatusOK || body != "GET /b" {
				t.Fatalf("the new client got %d %q", resp.StatusCode, body)
			}
			if took := time.Since(start); took > 2*time.Second {
				t.Errorf("the new client waited %v for a slot held by idle connections", took)
			}
			if _, ok := held[0].closed(2 * time.Second); !ok {
				t.Error("the connection idle longest is still open")
			}
			held[1].send("GET /c HTTP/1.1\r\nHost: a\r\n\r\n")
			if resp, body := held[1].mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || body != "GET /c" {
				t.Errorf("the other idle connection: %d %q; want it still served", resp.StatusCode, body)
			}
		})
	}
}

// TestBusyConnectionsNotReclaimed: connections whose requests are being
// served keep their slots; a new client waits until one frees.
func TestBusyConnectionsNotReclaimed(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	st := slowStub(release)
	addr := limServe(t, st, Options{MaxConnections: 1, KeepaliveTimeout: time.Minute})
	busy := limDial(t, addr)
	busy.send("GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
	awaitServed(t, st, 1)
	nc := limDial(t, addr)
	nc.send("GET /b HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
	nc.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if n, _ := nc.c.Read(make([]byte, 1)); n > 0 {
		t.Fatal("the new client was served while the only slot served a request")
	}
	close(release)
	if resp, _ := busy.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK {
		t.Fatalf("the slow request: %d", resp.StatusCode)
	}
	busy.c.Close()
	if resp, body := nc.mustResponse(5 * time.Second); resp.StatusCode != http.StatusOK || body != "GET /b" {
		t.Errorf("the waiting client got %d %q once the slot freed", resp.StatusCode, body)
	}
}
