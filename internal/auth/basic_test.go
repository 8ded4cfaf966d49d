package auth_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/crypto/bcrypt"

	"github.com/gatehouse/gatehouse/internal/auth"
)

// hash is a bcrypt hash of password at the cheapest cost, for tests that
// are about what is checked rather than what it costs.
func hash(t *testing.T, password string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func basicHeader(credentials string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(credentials))
}

// Check lets through exactly a known user with its password, however the
// client spelled the scheme or encoded a non-ASCII name, and nothing else.
func TestBasicCheckAcceptsOnlyAKnownUsersPassword(t *testing.T) {
	t.Parallel()
	b, err := auth.NewBasic(auth.BasicOptions{Users: map[string]string{
		"alice":  hash(t, "s3cret"),
		"jürgen": hash(t, "grün"),
	}})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name          string
		authorization []string // nil: no header
		wantUser      string
		wantOK        bool
		wantPresented bool
	}{
		{name: "right password", authorization: []string{basicHeader("alice:s3cret")}, wantUser: "alice", wantOK: true, wantPresented: true},
		{name: "scheme in lower case", authorization: []string{"basic " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}, wantUser: "alice", wantOK: true, wantPresented: true},
		{name: "wrong password", authorization: []string{basicHeader("alice:s3cre")}, wantPresented: true},
		{name: "empty password", authorization: []string{basicHeader("alice:")}, wantPresented: true},
		{name: "unknown user", authorization: []string{basicHeader("mallory:s3cret")}, wantPresented: true},
		{name: "user name in another case", authorization: []string{basicHeader("Alice:s3cret")}, wantPresented: true},
		{name: "UTF-8 user and password", authorization: []string{basicHeader("jürgen:grün")}, wantUser: "jürgen", wantOK: true, wantPresented: true},
		{name: "ISO-8859-1 user and password", authorization: []string{basicHeader("j\xfcrgen:gr\xfcn")}, wantUser: "jürgen", wantOK: true, wantPresented: true},
		{name: "no header"},
		{name: "no colon", authorization: []string{basicHeader("alice")}},
		{name: "not base64", authorization: []string{"Basic !!!"}},
		{name: "another scheme", authorization: []string{"Bearer " + base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))}},
		{name: "scheme alone", authorization: []string{"Basic"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			r, err := http.NewRequest("GET", "http://example.test/", nil)
			if err != nil {
				t.Fatal(err)
			}
			for _, v := range tc.authorization {
				r.Header.Add("Authorization", v)
			}
			// Twice: the second may come from the cache, and must agree.
			for i := range 2 {
				user, ok := b.Check(r)
				if user != tc.wantUser || ok != tc.wantOK {
					t.Errorf("check %d: Check = %q, %v; want %q, %v", i+1, user, ok, tc.wantUser, tc.wantOK)
				}
			}
			if got := b.HasCredentials(r); got != tc.wantPresented {
				t.Errorf("HasCredentials = %v, want %v", got, tc.wantPresented)
			}
		})
	}
}

// NewBasic refuses a user that cannot sign in, naming the user and never
// the hash, which is as secret as a password hash is.
func TestNewBasicRefusesUsersThatCannotSignIn(t *testing.T) {
	t.Parallel()
	good := hash(t, "pw")
	tests := []struct {
		name     string
		user     string
		hash     string
		wantWhy  string
		wantUser bool // the error is an *InvalidUserError naming user
	}{
		{name: "plain password", user: "bob", hash: "hunter2hunter2", wantWhy: "not a bcrypt hash", wantUser: true},
		{name: "another hash", user: "bob", hash: "$apr1$Vhg2ux7L$I5dMZGfKQvYZ4GbDnLwCW/", wantWhy: "not a bcrypt hash", wantUser: true},
		{name: "unknown bcrypt version", user: "bob", hash: "$2x$" + good[4:], wantWhy: "not a bcrypt hash", wantUser: true},
		{name: "cut short", user: "bob", hash: good[:59], wantWhy: "not a bcrypt hash", wantUser: true},
		{name: "cost below the minimum", user: "bob", hash: good[:4] + "03" + good[6:], wantWhy: "cost 3 is outside 4..31", wantUser: true},
		{name: "cost above the maximum", user: "bob", hash: good[:4] + "32" + good[6:], wantWhy: "cost 32 is outside 4..31", wantUser: true},
		{name: "empty name", user: "", hash: good, wantWhy: "name is empty", wantUser: true},
		{name: "colon in the name", user: "a:b", hash: good, wantWhy: "colon", wantUser: true},
		{name: "control character in the name", user: "a\nb", hash: good, wantWhy: "not printable", wantUser: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := auth.NewBasic(auth.BasicOptions{Users: map[string]string{"alice": good, tc.user: tc.hash}})
			var ue *auth.InvalidUserError
			if !errors.As(err, &ue) {
				t.Fatalf("NewBasic: %v; want an *auth.InvalidUserError", err)
			}
			if ue.User != tc.user || !strings.Contains(err.Error(), tc.wantWhy) {
				t.Errorf("NewBasic: %v; want user %q and %q", err, tc.user, tc.wantWhy)
			}
			if len(tc.hash) > 4 && strings.Contains(err.Error(), tc.hash[4:]) {
				t.Errorf("NewBasic: %v; names the hash", err)
			}
		})
	}
	t.Run("no users", func(t *testing.T) {
		if _, err := auth.NewBasic(auth.BasicOptions{}); err == nil {
			t.Error("NewBasic without users: no error")
		}
	})
	t.Run("control character in the realm", func(t *testing.T) {
		if _, err := auth.NewBasic(auth.BasicOptions{Users: map[string]string{"alice": good}, Realm: "a\r\nSet-Cookie: x=y"}); err == nil {
			t.Error("NewBasic with a CRLF in the realm: no error")
		}
	})
	t.Run("every bcrypt version", func(t *testing.T) {
		// htpasswd -B writes $2y$, PHP too; Go and Python write $2a$ or $2b$.
		users := map[string]string{"a": "$2a$" + good[4:], "b": "$2b$" + good[4:], "y": "$2y$" + good[4:]}
		b, err := auth.NewBasic(auth.BasicOptions{Users: users})
		if err != nil {
			t.Fatal(err)
		}
		for u := range users {
			r, _ := http.NewRequest("GET", "http://example.test/", nil)
			r.SetBasicAuth(u, "pw")
			if got, ok := b.Check(r); !ok || got != u {
				t.Errorf("user %s: Check = %q, %v; want %q, true", u, got, ok, u)
			}
		}
	})
}

// The challenge names the realm, quoted as RFC 9110 quotes, and asks for
// UTF-8 credentials.
func TestBasicChallengeQuotesTheRealm(t *testing.T) {
	t.Parallel()
	tests := []struct{ realm, want string }{
		{"", `Basic realm="restricted", charset="UTF-8"`},
		{"staging", `Basic realm="staging", charset="UTF-8"`},
		{`say "hi" \o/`, `Basic realm="say \"hi\" \\o/", charset="UTF-8"`},
	}
	for _, tc := range tests {
		b, err := auth.NewBasic(auth.BasicOptions{Users: map[string]string{"alice": hash(t, "pw")}, Realm: tc.realm})
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(tc.want, b.Challenge()); diff != "" {
			t.Errorf("realm %q: Challenge (-want +got):\n%s", tc.realm, diff)
		}
	}
}
