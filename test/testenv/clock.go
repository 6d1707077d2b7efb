package testenv

import (
	"fmt"
	"os"
	"sync"
	"time"
)

// ClockShiftVar shifts the "now" that tests build their telemetry around.
// A test that picks event times must take them from Now or Recent, never
// from a literal date (a row dated last month expires under a TTL) and
// never from time.Now directly (the scenario's load follows the hour of
// the day, so a fixture sized at 03:00 overflows at the evening peak).
// `make test-clock` runs the suite at several shifts across a day; see
// test/README.md.
//
// The servers keep the real clock: a positive shift puts event times in
// their future, which the product rejects beyond detect.max_future, so the
// shifts make go back in time.
const ClockShiftVar = "MESHGUARD_TEST_CLOCK_SHIFT"

var (
	shiftOnce sync.Once
	shift     time.Duration
	shiftErr  error
)

// ClockShift returns the shift MESHGUARD_TEST_CLOCK_SHIFT asks for (a Go
// duration such as -7h30m; empty means none).
func ClockShift() (time.Duration, error) {
	shiftOnce.Do(func() {
		v := os.Getenv(ClockShiftVar)
		if v == "" {
			return
		}
		shift, shiftErr = time.ParseDuration(v)
		if shiftErr != nil {
			shiftErr = fmt.Errorf("%s=%q: %w (want a Go duration such as -7h30m)", ClockShiftVar, v, shiftErr)
		}
	})
	return shift, shiftErr
}

// Now is the wall clock moved by MESHGUARD_TEST_CLOCK_SHIFT, in UTC. A bad
// value fails loudly: a suite meant to run at another hour must not
// silently run at this one.
func Now() time.Time {
	d, err := ClockShift()
	if err != nil {
		panic(err)
	}
	return time.Now().Add(d).UTC()
}

// Recent is a whole hour shortly before Now: a start for generated
// telemetry that is recent enough for every retention TTL and far enough
// behind the clock for every window of a few minutes to have closed.
func Recent() time.Time {
	return Now().Add(-2 * time.Hour).Truncate(time.Hour)
}

// Last is the most recent weekday at hour:00 UTC that is at least a day
// before Now: a start for tests whose scenario needs a time of the week (a
// Monday morning's traffic) and whose rows must outlive retention. Its
// date moves with the clock; its place in the week does not.
func Last(day time.Weekday, hour int) time.Time {
	t := Now().Add(-24 * time.Hour)
	at := time.Date(t.Year(), t.Month(), t.Day(), hour, 0, 0, 0, time.UTC)
	for at.After(t) || at.Weekday() != day {
		at = at.AddDate(0, 0, -1)
	}
	return at
}
