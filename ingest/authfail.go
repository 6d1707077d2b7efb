package ingest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"
)

// authFailure is the latest refusal of the credentials by a broker after
// the start (a password rotated on the brokers while meshguard runs: the
// open connections stay authenticated, new ones are refused), as kafka-go's
// reader reports it.
type authFailure struct {
	err   error // explained: names the broker's reason and the key to fix
	at    time.Time
	count int64
}

// saslRefusal returns the credentials error among kafka-go's log
// arguments, nil when there is none.
func saslRefusal(args []any) error {
	for _, a := range args {
		if err, ok := a.(error); ok && (errors.Is(err, kafka.SASLAuthenticationFailed) ||
			errors.Is(err, kafka.UnsupportedSASLMechanism) || errors.Is(err, kafka.IllegalSASLState)) {
			return err
		}
	}
	return nil
}

// noteAuthFailure records err and logs it with the key to fix, once a
// minute: kafka-go retries each partition about once a second.
func (c *Consumer) noteAuthFailure(p *atomic.Pointer[authFailure], err error) {
	prev := p.Load()
	f := &authFailure{err: c.kcfg.ExplainError(fmt.Sprint(c.kcfg.Brokers), err), at: time.Now(), count: 1}
	if prev != nil {
		f.count = prev.count + 1
	}
	p.Store(f)
	if prev == nil || f.at.Sub(prev.at) > time.Minute || f.count%60 == 0 {
		c.log.Error("kafka refuses meshguard's credentials; partitions whose connection was lost cannot be read. "+
			"Fix the setting and restart (the password file is read at start)", "err", f.err, "times", f.count)
	}
}

// authError is the credentials refusal while it lasts: refused within the
// last minute and no message fetched since.
func (c *Consumer) authError() error {
	f := c.authFail.Load()
	if f == nil || time.Since(f.at) > time.Minute || unixNano(c.progress.lastFetch.Load()).After(f.at) {
		return nil
	}
	return fmt.Errorf("kafka refuses the credentials (%d times, last at %s): %w", f.count, f.at.UTC().Format(time.RFC3339), f.err)
}
