package policy

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseSince reads a soak period: a positive Go duration ("36h") or a
// number of days ("7d").
func ParseSince(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n > 0 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	} else if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return d, nil
	}
	return 0, fmt.Errorf("%q: use a positive Go duration (36h) or days (7d)", s)
}
