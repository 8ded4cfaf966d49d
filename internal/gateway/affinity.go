package gateway

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"github.com/gatehouse/gatehouse/internal/pool"
)

// Affinity (apps.<name>.affinity) keeps a client on one instance with a
// cookie, as App Service's ARR affinity does: <name> (SameSite=Lax) and,
// on HTTPS, its twin <name>SameSite (SameSite=None; Secure) for requests
// from other sites, which a Lax cookie does not go with. Both carry the
// same value: an HMAC of the instance's identity with a secret kept in
// data_dir, so it says nothing about the instance and cannot be forged to
// name one, and a gatehouse that restarts keeping its instances keeps
// its clients on them.
//
// An instance's identity is its process: app, instance id and pid. A
// recycled or restarted instance is a new process (a recycle also has a
// new id, a crash or hard restart the same one): its memory, where the
// pinned client's session lived, is gone, so its clients move like those
// of an instance that went away, and spread by load again instead of
// piling back onto one instance. An external pool's member is its
// address: recycling it reaches the same server again.
//
// The cookie names a member; the client is sent there while the member
// is routable (ready, not ejected): a draining, unhealthy, crashed or
// removed member takes no pinned request, so the client moves at once,
// picked as any request is, and its cookie is rewritten to the instance
// that answered. Retries go elsewhere as they always do, and the cookie
// follows the answer. gatehouse's own error answers set no cookie.
//
// Under max_inflight a pinned member at its limit takes no more (Take
// refuses): the client is picked as any request is, or held in arrival
// order with the others, and the cookie follows the answer. Waiting for
// the pinned member alone would need a queue per member and would let
// one busy instance hold its clients past hold_timeout while others idle.

// keyFile is the affinity secret's file under data_dir: 64 hex digits.
const keyFile = "affinity.key"

// keyWarning is logged when the key cannot be kept in data_dir.
const keyWarning = "affinity cookies will not survive a restart of gatehouse"

// secret is the affinity key, read or created once, when an app with
// affinity first needs it.
type secret struct {
	dir  string
	warn func(error)
	once sync.Once
	key  []byte
}

func (s *secret) get() []byte {
	s.once.Do(func() {
		path := filepath.Join(s.dir, keyFile)
		key, err := loadKey(path)
		if err != nil {
			// Affinity still works until gatehouse restarts: the clients
			// are then spread again, which is no error either.
			key = make([]byte, 32)
			rand.Read(key)
			s.warn(err)
		}
		s.key = key
	})
	return s.key
}

// loadKey reads the key at path, creating it (0600) if there is none. A
// file that is there but unreadable or malformed is reported, never
// replaced: it may be a key copied from another gatehouse on purpose.
func loadKey(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return createKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the affinity key: %w", err)
	}
	key, err := hex.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(key) < 16 {
		return nil, fmt.Errorf("affinity key %s: want at least 32 hex digits", path)
	}
	return key, nil
}

func createKey(path string) ([]byte, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("creating the affinity key: %w", err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return loadKey(path) // another gatehouse made it first
	}
	if err != nil {
		return nil, fmt.Errorf("creating the affinity key: %w", err)
	}
	_, err = f.WriteString(hex.EncodeToString(key) + "\n")
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return nil, fmt.Errorf("writing the affinity key: %w", err)
	}
	return key, nil
}

// pinTable is the cookie of each member of an app's pool, built from one
// snapshot of its members and rebuilt when the pool changes.
type pinTable struct {
	members []*pool.Member // the snapshot
	name    string         // the cookie's name
	pins    []pin          // pins[i] is members[i]'s
}

// pin is one member's cookie value and its Set-Cookie fields, made once.
type pin struct {
	value string
	// plain is set over HTTP; secure and sameSite over HTTPS.
	plain, secure, sameSite string
}

// valueLen is the length of a cookie value: half an HMAC-SHA256, in hex.
const valueLen = 32

// pins returns the app's pin table for its current members.
func (a *appProxy) pins(name string) *pinTable {
	members := a.pool.Members()
	t := a.pinned.Load()
	if t != nil && t.name == name && sameSnapshot(t.members, members) {
		return t
	}
	nt := &pinTable{members: members, name: name, pins: make([]pin, len(members))}
	for i, m := range members {
		if p, ok := t.lookup(m, name); ok {
			nt.pins[i] = p
			continue
		}
		nt.pins[i] = newPin(a.secret.get(), a.name, name, m)
	}
	a.pinned.Store(nt)
	return nt
}

// sameSnapshot: the pool publishes a new slice for every change, and the
// table keeps the one it was built from alive, so no new slice can start
// where it does.
func sameSnapshot(a, b []*pool.Member) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// lookup returns m's pin, if the table has one for it under cookie name.
func (t *pinTable) lookup(m *pool.Member, name string) (pin, bool) {
	if t == nil || t.name != name {
		return pin{}, false
	}
	for i, x := range t.members {
		if x == m {
			return t.pins[i], true
		}
	}
	return pin{}, false
}

// find returns the member whose cookie value is v, preferring a routable
// one (an external pool's recycled member shares its address, and so its
// value, with its replacement); nil if none.
func (t *pinTable) find(v string) *pool.Member {
	var found *pool.Member
	for i, p := range t.pins {
		if p.value != v {
			continue
		}
		if m := t.members[i]; m.Routable() {
			return m
		} else if found == nil {
			found = m
		}
	}
	return found
}

func newPin(key []byte, app, name string, m *pool.Member) pin {
	mac := hmac.New(sha256.New, key)
	if pid := m.PID(); pid != 0 {
		mac.Write([]byte("instance\x00" + app + "\x00" + m.ID + "\x00" + strconv.Itoa(pid)))
	} else {
		mac.Write([]byte("upstream\x00" + app + "\x00" + m.Addr))
	}
	v := hex.EncodeToString(mac.Sum(nil))[:valueLen]
	return pin{
		value:    v,
		plain:    name + "=" + v + "; Path=/; HttpOnly; SameSite=Lax",
		secure:   name + "=" + v + "; Path=/; HttpOnly; Secure; SameSite=Lax",
		sameSite: name + "SameSite=" + v + "; Path=/; HttpOnly; SameSite=None; Secure",
	}
}

// readPin notes in st the affinity cookies the request carries, and the
// member they name (st.pin), which its first attempt goes to if it can.
func (a *appProxy) readPin(h http.Header, name string, st *reqState) {
	st.pinPlain, st.pinSameSite = affinityCookies(h["Cookie"], name)
	v := st.pinPlain
	if v == "" {
		v = st.pinSameSite
	}
	if len(v) == valueLen {
		st.pin = a.pins(name).find(v)
	}
}

// affinityCookies finds the values of cookies name and name+"SameSite" in
// the Cookie fields, without allocating; "" for one that is not there.
// The first of a name counts, as the most specific one comes first.
func affinityCookies(fields []string, name string) (plain, sameSite string) {
	for _, f := range fields {
		for f != "" {
			var part string
			part, f, _ = strings.Cut(f, ";")
			k, v, ok := strings.Cut(strings.TrimLeft(part, " \t"), "=")
			if !ok {
				continue
			}
			v = strings.TrimRight(v, " \t")
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			switch {
			case k == name:
				if plain == "" {
					plain = v
				}
			case len(k) == len(name)+len("SameSite") && k[:len(name)] == name && k[len(name):] == "SameSite":
				if sameSite == "" {
					sameSite = v
				}
			}
		}
	}
	return plain, sameSite
}

// setPin adds the affinity cookies naming m, the member that answered, to
// its response, after the app's own Set-Cookie fields, unless the client
// already has them: over HTTP the Lax cookie (a Secure one would be
// dropped), over HTTPS both.
func (a *appProxy) setPin(h http.Header, m *pool.Member, name string, st *reqState, secure bool) {
	if h == nil {
		return
	}
	p, ok := a.pins(name).lookup(m, name)
	if !ok {
		return // m left the pool as it answered: its cookie would name nothing
	}
	sent := st.pinPlain
	if sent == "" {
		sent = st.pinSameSite // a request from another site brings only this one
	}
	switch {
	case secure && (sent != p.value || st.pinSameSite != p.value):
		h["Set-Cookie"] = append(h["Set-Cookie"], p.secure, p.sameSite)
	case !secure && sent != p.value:
		h["Set-Cookie"] = append(h["Set-Cookie"], p.plain)
	}
}

// secureRequest reports whether the client's request came over TLS, which
// decides the cookies' Secure attribute and whether the SameSite=None
// twin is sent. The front sets Req.TLS from the connection, on every
// protocol.
// (A trusted proxy's X-Forwarded-Proto: https does not count: the
// cookie's attributes follow the connection the browser can see only
// when gatehouse terminates TLS itself.)
func secureRequest(req *http.Request) bool { return req.TLS != nil }
