package server

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/gatehouse/gatehouse/internal/config"
)

// Socket activation: under systemd socket units (dist/systemd/*.socket)
// systemd binds the listeners and passes them to gatehouse as it starts
// it (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES; descriptors 3 and up).
// systemd keeps its own copy, so the listening sockets outlive a
// gatehouse that dies: connections wait in the kernel's backlog while
// systemd restarts it, and the new gatehouse, which adopts the running
// apps, accepts them. None is refused.
//
// A passed socket is the public, HTTPS or admin listener by its
// FileDescriptorName= (public, https, admin); one with another name
// (systemd's default is the socket unit's) is the listener whose
// configured address it is bound to. A passed socket that is neither is
// an error, as a socket nobody accepts on would hold its connections
// forever. A listener with no passed socket is bound as without systemd.
//
// An upgrade's successor gets the same sockets through the handover, not
// through LISTEN_FDS: ActivatedSockets takes the variables out of the
// environment, so that neither a successor nor an app sees them, and the
// descriptors are close-on-exec.

// ActivatedSockets returns the sockets systemd passed to this process, in
// order, each named by LISTEN_FDNAMES; none when LISTEN_PID is another
// process's. The variables are removed from the environment either way.
func ActivatedSockets() []*os.File { return activation.Files(true) }

// activationNames are the FileDescriptorName= values gatehouse knows, by
// the listener they are (the keys bind and the handover use).
var activationNames = map[string]string{"public": "listen", "https": "tls listen", "admin": "admin listen"}

// UnmatchedSocketError is a socket systemd passed that is no listener of
// the config's: neither named for one nor bound to a configured address.
type UnmatchedSocketError struct {
	// Name is the socket's FileDescriptorName=; Addr its local address.
	Name, Addr string
	// Why says what it failed to match.
	Why string
}

func (e *UnmatchedSocketError) Error() string {
	return fmt.Sprintf("systemd passed the socket %q on %s, which is none of gatehouse's listeners: %s", e.Name, e.Addr, e.Why)
}

// activated are the passed sockets by the listener they are.
type activated map[string]net.Listener

// matchActivated makes the passed files listeners and says which
// listener each one is. On error none is left open. The files are closed:
// each listener holds a descriptor of its own, close-on-exec.
func matchActivated(files []*os.File, cfg *config.Config, log *slog.Logger) (activated, error) {
	if len(files) == 0 {
		return nil, nil
	}
	configured := map[string]string{"listen": cfg.Listen, "admin listen": cfg.Admin}
	if cfg.TLS != nil {
		configured["tls listen"] = cfg.TLS.Listen
	}
	out := activated{}
	type passed struct {
		name string
		ln   net.Listener
	}
	var unnamed []passed
	var err error
	fail := func(e error) {
		if err == nil {
			err = e
		}
	}
	for i, f := range files {
		ln, lerr := net.FileListener(f)
		f.Close()
		name := f.Name()
		if lerr != nil {
			fail(fmt.Errorf("systemd passed the socket %q (descriptor %d), which is not a listening socket: %w", name, 3+i, lerr))
			continue
		}
		if _, ok := ln.(*net.TCPListener); !ok {
			ln.Close()
			fail(&UnmatchedSocketError{Name: name, Addr: ln.Addr().String(), Why: "it is not a TCP socket (ListenStream= takes a port or an address:port)"})
			continue
		}
		if !listening(ln.(*net.TCPListener)) {
			// A connection (Accept=yes passes one per service
			// instance), on which every accept would fail.
			ln.Close()
			fail(fmt.Errorf("systemd passed the socket %q (descriptor %d), which is not a listening socket: set Accept=no in its socket unit", name, 3+i))
			continue
		}
		key, named := activationNames[name]
		switch {
		case !named:
			unnamed = append(unnamed, passed{name, ln})
			continue
		case configured[key] == "":
			fail(&UnmatchedSocketError{Name: name, Addr: ln.Addr().String(), Why: "the config has no tls: block"})
		case out[key] != nil:
			fail(&UnmatchedSocketError{Name: name, Addr: ln.Addr().String(), Why: "another passed socket has the same name"})
		default:
			out[key] = ln
			note(log, key, name, ln, configured[key])
			continue
		}
		ln.Close()
	}
	for _, p := range unnamed {
		key := ""
		for _, k := range []string{"listen", "tls listen", "admin listen"} {
			if out[k] == nil && configured[k] != "" && boundTo(p.ln.Addr(), configured[k]) {
				key = k
				break
			}
		}
		if key == "" {
			p.ln.Close()
			fail(&UnmatchedSocketError{Name: p.name, Addr: p.ln.Addr().String(),
				Why: "name it public, https or admin (FileDescriptorName=), or set listen, tls.listen or admin in the config to its address"})
			continue
		}
		out[key] = p.ln
		note(log, key, p.name, p.ln, configured[key])
	}
	if err != nil {
		out.close()
		return nil, err
	}
	return out, nil
}

// listening reports whether ln's socket listens (SO_ACCEPTCONN).
func listening(ln *net.TCPListener) bool {
	rc, err := ln.SyscallConn()
	if err != nil {
		return false
	}
	on := 0
	var serr error
	if err := rc.Control(func(fd uintptr) { on, serr = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ACCEPTCONN) }); err != nil {
		return false
	}
	return serr == nil && on == 1
}

// note logs which passed socket a listener is, with a warning when it is
// not on the configured address: a reload that moves that address binds
// the new one, while systemd keeps the old socket.
func note(log *slog.Logger, key, name string, ln net.Listener, addr string) {
	if boundTo(ln.Addr(), addr) {
		log.Info("listener passed by systemd", "listener", key, "name", name, "addr", ln.Addr().String())
		return
	}
	log.Warn("listener passed by systemd on another address than the config's; gatehouse serves on systemd's",
		"listener", key, "name", name, "addr", ln.Addr().String(), "configured", addr)
}

// take returns the passed socket for the listener key, once.
func (a activated) take(key string) (net.Listener, bool) {
	ln, ok := a[key]
	delete(a, key)
	return ln, ok
}

// close closes the passed sockets not taken: those of listeners whose
// binding never came (an earlier one failed) or an inherited socket
// served instead.
func (a activated) close() {
	for key, ln := range a {
		ln.Close()
		delete(a, key)
	}
}

// boundTo reports whether a socket bound to got is the one addr (a
// configured host:port) would bind: the same port, and the wildcard for
// an empty or unspecified host, else one of the host's addresses. Port 0
// (the kernel's choice) matches nothing.
func boundTo(got net.Addr, addr string) bool {
	tcp, ok := got.(*net.TCPAddr)
	if !ok {
		return false
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	port, err := strconv.Atoi(portStr)
	if err != nil {
		if port, err = net.LookupPort("tcp", portStr); err != nil {
			return false
		}
	}
	if port == 0 || port != tcp.Port {
		return false
	}
	if host == "" {
		return tcp.IP.IsUnspecified()
	}
	if ip := net.ParseIP(host); ip != nil {
		return ip.Equal(tcp.IP) || ip.IsUnspecified() && tcp.IP.IsUnspecified()
	}
	ips, err := net.LookupIP(host)
	if err != nil {
		return false
	}
	for _, ip := range ips {
		if ip.Equal(tcp.IP) {
			return true
		}
	}
	return false
}
