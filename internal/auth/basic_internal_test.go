package auth

import (
	"context"
	"crypto/sha256"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/internal/testutil"
)

// comparisons counts the bcrypt comparisons of b and names the hash of
// each.
type comparisons struct {
	mu     sync.Mutex
	hashes []string
}

func countComparisons(b *Basic) *comparisons {
	c := &comparisons{}
	b.compare = func(hash, password []byte) error {
		c.mu.Lock()
		c.hashes = append(c.hashes, string(hash))
		c.mu.Unlock()
		return bcrypt.CompareHashAndPassword(hash, password)
	}
	return c
}

func (c *comparisons) seen() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.hashes...)
}

func mustHash(t *testing.T, password string, cost int) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), cost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// A right password costs one bcrypt, and the client's next requests
// none; a wrong password costs one every time, and so does an unknown
// user, against a hash as costly as the costliest user's; a wrong
// password of a cheaper user costs a pad besides, so that none answers
// sooner than another.
func TestBasicSpendsABcryptOnEveryFailureAndOnlyTheFirstSuccess(t *testing.T) {
	t.Parallel()
	alice := mustHash(t, "s3cret", bcrypt.MinCost)
	bob := mustHash(t, "hunter2", bcrypt.MinCost+1)
	b, err := NewBasic(BasicOptions{Users: map[string]string{"alice": alice, "bob": bob}})
	if err != nil {
		t.Fatal(err)
	}
	pad := string(b.pads[bcrypt.MinCost])
	c := countComparisons(b)
	steps := []struct {
		user, password string
		wantOK         bool
		wantCompared   []string // the hashes compared by this step
	}{
		{"alice", "s3cret", true, []string{alice}},
		{"alice", "s3cret", true, nil},
		{"alice", "wrong", false, []string{alice, pad}},
		{"alice", "wrong", false, []string{alice, pad}},
		{"mallory", "s3cret", false, []string{bob}},
		{"mallory", "hunter2", false, []string{bob}},
		{"bob", "hunter2", true, []string{bob}},
		{"alice", "s3cret", true, nil},
		{"bob", "hunter2", true, nil},
	}
	for i, s := range steps {
		before := len(c.seen())
		r, _ := http.NewRequest("GET", "http://example.test/", nil)
		r.SetBasicAuth(s.user, s.password)
		if _, ok := b.Check(r); ok != s.wantOK {
			t.Errorf("step %d (%s:%s): ok = %v, want %v", i, s.user, s.password, ok, s.wantOK)
		}
		if diff := cmp.Diff(s.wantCompared, c.seen()[before:], cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("step %d (%s:%s): hashes compared (-want +got):\n%s", i, s.user, s.password, diff)
		}
	}
}

// A failed check costs the work of one bcrypt at the users' highest
// cost whichever name it gives, a user's with a cheaper hash (htpasswd
// -B makes cost 5, gatehouse hash-password 12) as an unknown one's: an
// answer that came sooner would tell that the name is a user's. Work is
// counted in bcrypt's rounds, 2^cost a comparison, not timed.
func TestBasicFailureCostsTheSameWorkWhateverTheName(t *testing.T) {
	t.Parallel()
	users := map[string]string{
		"cheap":  mustHash(t, "pw", bcrypt.MinCost),
		"middle": mustHash(t, "pw", bcrypt.MinCost+1),
		"costly": mustHash(t, "pw", bcrypt.MinCost+3),
	}
	b, err := NewBasic(BasicOptions{Users: users})
	if err != nil {
		t.Fatal(err)
	}
	c := countComparisons(b)
	work := func(hashes []string) int {
		n := 0
		for _, h := range hashes {
			cost, err := bcrypt.Cost([]byte(h))
			if err != nil {
				t.Fatalf("a comparison against %q: %v", h, err)
			}
			n += 1 << cost
		}
		return n
	}
	tests := []struct {
		user, password string
		wantOK         bool
		wantWork       int
	}{
		{"cheap", "wrong", false, 1 << (bcrypt.MinCost + 3)},
		{"middle", "wrong", false, 1 << (bcrypt.MinCost + 3)},
		{"costly", "wrong", false, 1 << (bcrypt.MinCost + 3)},
		{"nobody", "wrong", false, 1 << (bcrypt.MinCost + 3)},
		{"nobody", "pw", false, 1 << (bcrypt.MinCost + 3)},
		// A right password is no failure, and its hash's own cost.
		{"cheap", "pw", true, 1 << bcrypt.MinCost},
	}
	for _, tt := range tests {
		t.Run(tt.user+":"+tt.password, func(t *testing.T) {
			before := len(c.seen())
			r, _ := http.NewRequest("GET", "http://example.test/", nil)
			r.SetBasicAuth(tt.user, tt.password)
			if _, ok := b.Check(r); ok != tt.wantOK {
				t.Errorf("Check = %v, want %v", ok, tt.wantOK)
			}
			if got := work(c.seen()[before:]); got != tt.wantWork {
				t.Errorf("work %d rounds, want %d", got, tt.wantWork)
			}
		})
	}
}

// The pads that even out a cheaper user's failure cost about one bcrypt
// at the highest cost to make. A Basic is built for every route that
// takes the app's basic_auth, and twice a reload (checked, then built):
// a table of the same costs takes the pads already made rather than
// spending that again. A pad made anew would differ, by its salt.
func TestBasicTablesOfTheSameCostsMakeThePadsOnce(t *testing.T) {
	t.Parallel()
	users := map[string]string{
		"cheap":  mustHash(t, "pw", bcrypt.MinCost),
		"costly": mustHash(t, "pw", bcrypt.MinCost+2),
	}
	var built []*Basic
	for range 3 {
		b, err := NewBasic(BasicOptions{Users: users})
		if err != nil {
			t.Fatal(err)
		}
		built = append(built, b)
	}
	for i, b := range built[1:] {
		if diff := cmp.Diff(built[0].pads, b.pads); diff != "" {
			t.Errorf("table %d made its own pads (-first +its):\n%s", i+2, diff)
		}
	}
	if n := len(built[0].pads); n != bcrypt.MinCost+2 || built[0].pads[bcrypt.MinCost] == nil || built[0].pads[bcrypt.MinCost+1] == nil {
		t.Errorf("pads %q; want one of each cost from %d to %d", built[0].pads, bcrypt.MinCost, bcrypt.MinCost+1)
	}
}

// At the cost a deployment uses, the first check spends a bcrypt and the
// second is a table look-up: counted, not timed.
func TestBasicCachesAVerificationAtARealCost(t *testing.T) {
	t.Parallel()
	testutil.SkipInShort(t) // a cost-12 hash takes a quarter second or more
	b, err := NewBasic(BasicOptions{Users: map[string]string{"alice": mustHash(t, "s3cret", 12)}})
	if err != nil {
		t.Fatal(err)
	}
	c := countComparisons(b)
	r, _ := http.NewRequest("GET", "http://example.test/", nil)
	r.SetBasicAuth("alice", "s3cret")
	for range 3 {
		if _, ok := b.Check(r); !ok {
			t.Fatal("Check of the right password failed")
		}
	}
	if n := len(c.seen()); n != 1 {
		t.Errorf("%d bcrypt comparisons for 3 checks of one password, want 1", n)
	}
}

// The table of verified credentials stays within its bound.
func TestBasicCacheIsBounded(t *testing.T) {
	t.Parallel()
	b, err := NewBasic(BasicOptions{Users: map[string]string{"alice": mustHash(t, "pw", bcrypt.MinCost)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range maxCached + 10 {
		b.remember(sha256.Sum256([]byte{byte(i), byte(i >> 8)}))
	}
	if n := len(b.cache); n != maxCached {
		t.Errorf("%d entries cached, want the bound, %d", n, maxCached)
	}
}

// Fail waits FailDelay; MaxFailing failures wait at once and one more is
// refused at once; the end of its context ends a failure's wait; each
// Basic counts its own.
func TestBasicFailWaitsWithinACap(t *testing.T) {
	t.Parallel()
	users := map[string]string{"alice": mustHash(t, "pw", bcrypt.MinCost)}
	b, err := NewBasic(BasicOptions{Users: users, FailDelay: time.Hour, MaxFailing: 4})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	waited := make(chan bool, 4)
	for range 4 {
		go func() { waited <- b.Fail(ctx) }()
	}
	testutil.WaitFor(t, 10*time.Second, "4 failures waiting", func() bool { return len(b.failing) == 4 })
	if b.Fail(context.Background()) {
		t.Error("a 5th failure while 4 wait: Fail = true, want false (429 at once)")
	}

	other, err := NewBasic(BasicOptions{Users: users, FailDelay: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	done, stop := context.WithCancel(context.Background())
	stop()
	if !other.Fail(done) {
		t.Error("another Basic's failure while the first's 4 wait: Fail = false, want true")
	}

	cancel()
	for range 4 {
		select {
		case w := <-waited:
			if !w {
				t.Error("a waiting failure whose context ended: Fail = false, want true")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a waiting failure did not return within 10s of its context's end")
		}
	}

	short, err := NewBasic(BasicOptions{Users: users, FailDelay: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if !short.Fail(context.Background()) {
		t.Error("a lone failure: Fail = false, want true")
	}
	if d := time.Since(start); d < 20*time.Millisecond {
		t.Errorf("a lone failure waited %v, want FailDelay (20ms)", d)
	}
}

// Without options a failure waits a second, four at once, as the admin
// sign-in's do.
func TestBasicFailDefaultsToTheAdminSignInsDelay(t *testing.T) {
	t.Parallel()
	b, err := NewBasic(BasicOptions{Users: map[string]string{"alice": mustHash(t, "pw", bcrypt.MinCost)}})
	if err != nil {
		t.Fatal(err)
	}
	if b.failDelay != time.Second || cap(b.failing) != 4 {
		t.Errorf("FailDelay %v, MaxFailing %d; want 1s, 4", b.failDelay, cap(b.failing))
	}
}

// bcrypt comparisons run a few at once (MaxComparing): a flood of
// guesses, each of which costs a bcrypt before its failure waits, takes
// those cores and no more; a guess waiting for its turn gives up with
// its client.
func TestBasicComparesAFewAtOnce(t *testing.T) {
	t.Parallel()
	b, err := NewBasic(BasicOptions{Users: map[string]string{"alice": mustHash(t, "pw", bcrypt.MinCost)}, MaxComparing: 2})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	entered := 0
	release := make(chan struct{})
	b.compare = func(hash, password []byte) error {
		mu.Lock()
		entered++
		mu.Unlock()
		<-release
		return bcrypt.ErrMismatchedHashAndPassword
	}
	count := func() int {
		mu.Lock()
		defer mu.Unlock()
		return entered
	}
	guess := func(ctx context.Context) *http.Request {
		r, _ := http.NewRequestWithContext(ctx, "GET", "http://x/", nil)
		r.SetBasicAuth("alice", "guess")
		return r
	}
	first := make(chan bool, 2)
	for range 2 {
		go func() { _, ok := b.Check(guess(context.Background())); first <- ok }()
	}
	testutil.WaitFor(t, 10*time.Second, "2 comparisons running", func() bool { return count() >= 2 })
	ctx, cancel := context.WithCancel(context.Background())
	more := make(chan bool, 3)
	for range 3 {
		go func() { _, ok := b.Check(guess(ctx)); more <- ok }()
	}
	cancel()
	for range 3 {
		select {
		case ok := <-more:
			if ok {
				t.Error("a guess whose client left: Check = true")
			}
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatal("a guess beyond MaxComparing, its client gone, did not return within 10s: it is being compared")
		}
	}
	if n := count(); n != 2 {
		t.Errorf("%d comparisons ran at once, want MaxComparing (2)", n)
	}
	close(release)
	for range 2 {
		if <-first {
			t.Error("a wrong password: Check = true")
		}
	}
}
