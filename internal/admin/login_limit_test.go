package admin

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"testing/synctest"
)

// A guesser who fills one admin listener's queue of failed sign-ins gets
// 429s there, while a user's typo on another listener in the same
// process waits its second and gets a 401 as usual.
func TestFailedSignInsQueueAloneOnEachListener(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		guessed, other := http.NewServeMux(), http.NewServeMux()
		registerLogin(guessed, "right", newSessions())
		registerLogin(other, "right", newSessions())
		signIn := func(mux *http.ServeMux) *httptest.ResponseRecorder {
			r := httptest.NewRequest("POST", "/login", strings.NewReader(url.Values{"token": {"wrong"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			mux.ServeHTTP(w, r)
			return w
		}
		waiting := make(chan int, maxFailing)
		for range maxFailing {
			go func() { waiting <- signIn(guessed).Code }()
		}
		synctest.Wait() // every one of them waits out its delay
		if got := signIn(guessed).Code; got != http.StatusTooManyRequests {
			t.Fatalf("a failure beyond %d waiting on one listener: %d, want 429", maxFailing, got)
		}
		if got := signIn(other).Code; got != http.StatusUnauthorized {
			t.Errorf("a failure on another listener while the first is full: %d, want 401", got)
		}
		for range maxFailing {
			if got := <-waiting; got != http.StatusUnauthorized {
				t.Errorf("a failure that waited: %d, want 401", got)
			}
		}
	})
}
