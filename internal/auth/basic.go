package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
)

// BasicOptions configure a Basic.
type BasicOptions struct {
	// Users maps each user name to the bcrypt hash of its password
	// ($2a$, $2b$ or $2y$, as `gatehouse hash-password` and htpasswd -B
	// make them).
	Users map[string]string
	// Realm is named in the challenge; default "restricted".
	Realm string
	// FailDelay is how long a wrong password waits before its answer;
	// default 1s.
	FailDelay time.Duration
	// MaxFailing is how many failures may wait at once; default 4.
	MaxFailing int
	// MaxComparing is how many bcrypt comparisons may run at once;
	// default half the cores, at least one. Each costs a core for about
	// a quarter of a second at cost 12, before its failure waits: without
	// a bound a flood of guesses takes every core from the gateway.
	MaxComparing int
}

// Defaults of BasicOptions.
const (
	DefaultRealm      = "restricted"
	DefaultFailDelay  = time.Second
	DefaultMaxFailing = 4
)

// maxCached bounds the table of verified credentials. When it is full an
// arbitrary entry goes: a client whose entry went pays one bcrypt more.
const maxCached = 1024

// Basic checks HTTP Basic credentials (RFC 7617). It is safe for
// concurrent use.
type Basic struct {
	users     map[string]basicUser
	challenge string
	// dummy is compared against for an unknown user, so that it costs
	// what a wrong password costs: the hash of the highest cost among
	// the users.
	dummy []byte
	// pads[k] is a hash of cost k, for each cost from the cheapest
	// user's up to below dummy's. A wrong password of a user whose hash
	// is cheaper than dummy is compared against pads[cost:] too, which
	// add up to dummy's work: otherwise an unknown name, compared
	// against dummy, would answer later than that user, and tell that
	// the user exists (htpasswd -B makes cost 5, hash-password 12).
	pads [][]byte

	// cacheKey keys the HMAC that names a verified user, password and
	// hash in cache: the table holds no password, nor anything from
	// which one can be guessed offline faster than from the hash.
	cacheKey []byte
	mu       sync.Mutex
	cache    map[[sha256.Size]byte]struct{}

	failDelay time.Duration
	failing   chan struct{}
	// comparing holds a slot for each bcrypt comparison running.
	comparing chan struct{}

	// compare is bcrypt.CompareHashAndPassword; tests count its calls.
	compare func(hash, password []byte) error
}

type basicUser struct {
	hash []byte
	cost int
}

// InvalidUserError is a user of BasicOptions.Users that cannot sign in:
// a bad name or a hash that is not bcrypt. It never holds the hash.
type InvalidUserError struct {
	User   string
	Reason string
}

func (e *InvalidUserError) Error() string {
	return fmt.Sprintf("basic auth user %q: %s", e.User, e.Reason)
}

// NewBasic checks every user's name and hash and returns a Basic for them.
func NewBasic(o BasicOptions) (*Basic, error) {
	if len(o.Users) == 0 {
		return nil, errors.New("basic auth needs at least one user")
	}
	realm := o.Realm
	if realm == "" {
		realm = DefaultRealm
	}
	if strings.ContainsFunc(realm, isControl) {
		return nil, fmt.Errorf("basic auth realm %q has a control character", realm)
	}
	b := &Basic{
		users:     make(map[string]basicUser, len(o.Users)),
		challenge: `Basic realm="` + quoteEscape(realm) + `", charset="UTF-8"`,
		cacheKey:  make([]byte, 32),
		cache:     map[[sha256.Size]byte]struct{}{},
		failDelay: o.FailDelay,
		compare:   bcrypt.CompareHashAndPassword,
	}
	if b.failDelay <= 0 {
		b.failDelay = DefaultFailDelay
	}
	maxFailing := o.MaxFailing
	if maxFailing <= 0 {
		maxFailing = DefaultMaxFailing
	}
	b.failing = make(chan struct{}, maxFailing)
	maxComparing := o.MaxComparing
	if maxComparing <= 0 {
		maxComparing = max(1, runtime.GOMAXPROCS(0)/2)
	}
	b.comparing = make(chan struct{}, maxComparing)
	rand.Read(b.cacheKey) // never fails (crypto/rand's contract)

	minCost, maxCost := bcrypt.MaxCost+1, -1
	for user, hash := range o.Users {
		if err := checkUser(user); err != nil {
			return nil, &InvalidUserError{User: user, Reason: err.Error()}
		}
		cost, err := checkHash(hash)
		if err != nil {
			return nil, &InvalidUserError{User: user, Reason: err.Error()}
		}
		b.users[user] = basicUser{hash: []byte(hash), cost: cost}
		minCost = min(minCost, cost)
		if cost > maxCost {
			maxCost, b.dummy = cost, []byte(hash)
		}
	}
	pads, err := padHashes(minCost, maxCost)
	if err != nil {
		return nil, err
	}
	b.pads = pads
	return b, nil
}

// padHashes returns a hash of each cost from lo up to below hi, indexed
// by cost; nil when lo is hi. Together they cost about what one hash of
// cost hi does, which is what making them takes: each is made once a
// process (padCache), not again for every route that takes the app's
// basic_auth, nor at every reload, which builds the routes twice (checked,
// then built).
func padHashes(lo, hi int) ([][]byte, error) {
	if lo >= hi {
		return nil, nil
	}
	padCache.mu.Lock()
	defer padCache.mu.Unlock()
	pads := make([][]byte, hi)
	for k := lo; k < hi; k++ {
		if padCache.hashes[k] == nil {
			password := make([]byte, 16)
			rand.Read(password) // never fails (crypto/rand's contract)
			h, err := bcrypt.GenerateFromPassword(password, k)
			if err != nil {
				return nil, fmt.Errorf("basic auth: a hash of cost %d: %w", k, err)
			}
			padCache.hashes[k] = h
		}
		pads[k] = padCache.hashes[k]
	}
	return pads, nil
}

// padCache holds the pad of each cost made so far. A pad is a hash of a
// random password no client knows, compared against only for the work
// it costs, so one serves every table of users.
var padCache struct {
	mu     sync.Mutex
	hashes [bcrypt.MaxCost + 1][]byte
}

// checkUser: a name a client can send. The first colon of the credentials
// ends the name, so a name cannot hold one.
func checkUser(user string) error {
	switch {
	case user == "":
		return errors.New("the name is empty")
	case strings.Contains(user, ":"):
		return errors.New("the name has a colon, which Basic credentials cannot carry in a name")
	case !utf8.ValidString(user) || strings.ContainsFunc(user, isControl):
		return errors.New("the name is not printable UTF-8")
	}
	return nil
}

// checkHash returns the cost of a bcrypt hash, or why it is not one. Its
// errors are its own, not bcrypt's, which quote a byte of the hash.
func checkHash(hash string) (int, error) {
	const want = "is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters; make one with gatehouse hash-password)"
	if len(hash) != 60 || !(strings.HasPrefix(hash, "$2a$") || strings.HasPrefix(hash, "$2b$") || strings.HasPrefix(hash, "$2y$")) {
		return 0, errors.New("the password " + want)
	}
	cost, err := bcrypt.Cost([]byte(hash))
	if err != nil {
		var ic bcrypt.InvalidCostError
		if errors.As(err, &ic) {
			return 0, fmt.Errorf("the hash's cost %d is outside %d..%d", int(ic), bcrypt.MinCost, bcrypt.MaxCost)
		}
		return 0, errors.New("the password " + want)
	}
	return cost, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// quoteEscape escapes s for the inside of a quoted-string (RFC 9110 5.6.4).
func quoteEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// Challenge is the WWW-Authenticate value of a 401 answer.
func (b *Basic) Challenge() string { return b.challenge }

// HasCredentials reports whether r carries Basic credentials at all. A
// failed Check of a request that does is a wrong guess, for Fail to hold
// back; one that does not (a browser's first request) is answered 401 at
// once, for the browser to ask its user.
func (b *Basic) HasCredentials(r *http.Request) bool {
	_, _, ok := r.BasicAuth()
	return ok
}

// Check verifies r's Authorization header and returns the user it names
// when the password is right. Missing or malformed credentials, an
// unknown user and a wrong password all return ok=false: the caller
// answers 401 with Challenge() as WWW-Authenticate (after Fail when
// HasCredentials). Every failure costs the work of a bcrypt at the
// users' highest cost, an unknown user's and a cheaper user's wrong
// password alike; a right password is verified once and then found in
// a bounded cache; a failure is never cached. The comparisons of a
// check wait their turn among MaxComparing; a request whose context
// ends meanwhile fails.
func (b *Basic) Check(r *http.Request) (user string, ok bool) {
	u, p, present := r.BasicAuth()
	if !present {
		return "", false
	}
	// charset="UTF-8" asks for UTF-8; a client that ignores it sends
	// ISO-8859-1, whose every byte is the code point of the same number.
	u, p = latin1IfNotUTF8(u), latin1IfNotUTF8(p)
	entry, known := b.users[u]
	if !known {
		entry = basicUser{hash: b.dummy}
	}
	key := b.cacheName(u, p, entry.hash)
	if known && b.cached(key) {
		return u, true
	}
	select {
	case b.comparing <- struct{}{}:
	case <-r.Context().Done():
		return "", false
	}
	err := b.compare(entry.hash, []byte(p))
	if err != nil && known {
		b.pad(entry.cost, []byte(p))
	}
	<-b.comparing
	if err != nil || !known {
		return "", false
	}
	b.remember(key)
	return u, true
}

// pad spends, after a failed comparison against a hash of cost, the
// work that takes it to the highest cost's: 2^cost more for each cost
// from cost up, 2^cost + 2^cost + … + 2^(max-1) = 2^max.
func (b *Basic) pad(cost int, password []byte) {
	for k := cost; k < len(b.pads); k++ {
		b.compare(b.pads[k], password)
	}
}

// latin1IfNotUTF8 returns s, or, when s is not UTF-8, s read as ISO-8859-1.
func latin1IfNotUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	r := make([]rune, len(s))
	for i := 0; i < len(s); i++ {
		r[i] = rune(s[i])
	}
	return string(r)
}

// cacheName is the HMAC of the user, password and hash, each preceded by
// its length so that no two triples run together the same.
func (b *Basic) cacheName(user, password string, hash []byte) [sha256.Size]byte {
	m := hmac.New(sha256.New, b.cacheKey)
	var n [8]byte
	for _, part := range [][]byte{[]byte(user), []byte(password), hash} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		m.Write(n[:])
		m.Write(part)
	}
	var k [sha256.Size]byte
	m.Sum(k[:0])
	return k
}

func (b *Basic) cached(k [sha256.Size]byte) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	_, ok := b.cache[k]
	return ok
}

func (b *Basic) remember(k [sha256.Size]byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.cache) >= maxCached {
		for old := range b.cache {
			delete(b.cache, old)
			break
		}
	}
	b.cache[k] = struct{}{}
}

// Fail holds back the answer to a failed Check of a request that carried
// credentials: it waits FailDelay (less when ctx ends first, the client
// gone) and returns true, for the caller to answer 401. When MaxFailing
// failures already wait it returns false at once, for the caller to
// answer 429: nobody can queue failures to keep a user's typo waiting.
func (b *Basic) Fail(ctx context.Context) (waited bool) {
	select {
	case b.failing <- struct{}{}:
	default:
		return false
	}
	defer func() { <-b.failing }()
	t := time.NewTimer(b.failDelay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
	return true
}
