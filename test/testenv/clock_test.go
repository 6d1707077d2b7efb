package testenv_test

import (
	"testing"
	"time"

	"github.com/meshguard/meshguard/test/testenv"
)

func TestClockAnchors(t *testing.T) {
	now := testenv.Now()
	if r := testenv.Recent(); !r.Before(now.Add(-time.Hour)) || r.Before(now.Add(-3*time.Hour)) || r.Minute() != 0 {
		t.Errorf("Recent() = %v at %v, want a whole hour 1 to 3 hours before", r, now)
	}
	for day := time.Sunday; day <= time.Saturday; day++ {
		at := testenv.Last(day, 9)
		if at.Weekday() != day || at.Hour() != 9 || at.Minute() != 0 {
			t.Errorf("Last(%v, 9) = %v", day, at)
		}
		if age := now.Sub(at); age < 24*time.Hour || age > 8*24*time.Hour {
			t.Errorf("Last(%v, 9) = %v is %v before %v, want 1 to 8 days", day, at, age, now)
		}
	}
}
