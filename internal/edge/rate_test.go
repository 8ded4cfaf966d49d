package edge

import (
	"testing"

	"github.com/gatehouse/gatehouse/internal/config"
)

// A rate outside what the limiter can count (one a year to one a
// nanosecond) is an error of the route, not a panic of the gateway that
// builds it on a reload.
func TestCompileRefusesARateTheLimiterCannotCount(t *testing.T) {
	for _, rate := range []string{"2000000000/s", "0.00001/h"} {
		t.Run(rate, func(t *testing.T) {
			r := config.Route{Match: "/", RateLimit: &config.RequestRateLimit{Rate: rate, Burst: 1}}
			defer func() {
				if p := recover(); p != nil {
					t.Fatalf("Compile panicked: %v", p)
				}
			}()
			if _, err := Compile(config.NewApp("web"), &r); err == nil {
				t.Errorf("Compile took rate %q", rate)
			}
		})
	}
}
