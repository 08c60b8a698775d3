package arg

import (
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// Resource Graph's per-user quota headers: requests left in the current
// window, and when the window resets (hh:mm:ss).
const (
	headerQuotaRemaining = "x-ms-user-quota-remaining"
	headerQuotaResets    = "x-ms-user-quota-resets-after"
)

// throttle is a per-try pipeline policy that keeps one poller within Resource
// Graph's quota: when a response says no request is left in the window, the
// next request waits until the window resets. It also counts throttled
// (HTTP 429) responses; the SDK's retry policy retries those after their
// Retry-After.
type throttle struct {
	mu        sync.Mutex
	notBefore time.Time
	throttled atomic.Int64
	// maxWait bounds one wait, should a header be absurd.
	maxWait time.Duration
	sleep   func(*policy.Request, time.Duration) error
}

func newThrottle() *throttle {
	return &throttle{maxWait: 5 * time.Minute, sleep: sleepCtx}
}

func sleepCtx(req *policy.Request, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-req.Raw().Context().Done():
		return req.Raw().Context().Err()
	}
}

// Do implements policy.Policy.
func (t *throttle) Do(req *policy.Request) (*http.Response, error) {
	t.mu.Lock()
	wait := time.Until(t.notBefore)
	t.mu.Unlock()
	if wait > 0 {
		if err := t.sleep(req, min(wait, t.maxWait)); err != nil {
			return nil, err
		}
	}
	resp, err := req.Next()
	if err != nil || resp == nil {
		return resp, err
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		t.throttled.Add(1)
	}
	if remaining, ok := parseInt(resp.Header.Get(headerQuotaRemaining)); ok && remaining <= 0 {
		if d, ok := parseResetsAfter(resp.Header.Get(headerQuotaResets)); ok {
			t.mu.Lock()
			if nb := time.Now().Add(min(d, t.maxWait)); nb.After(t.notBefore) {
				t.notBefore = nb
			}
			t.mu.Unlock()
		}
	}
	return resp, nil
}

func parseInt(s string) (int, bool) {
	n, err := strconv.Atoi(strings.TrimSpace(s))
	return n, err == nil
}

// parseResetsAfter reads "hh:mm:ss" (Resource Graph's form), tolerating
// fractional seconds and a plain number of seconds.
func parseResetsAfter(s string) (time.Duration, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, false
	}
	if secs, err := strconv.ParseFloat(s, 64); err == nil {
		if secs < 0 || secs > 86400 {
			return 0, false
		}
		return time.Duration(secs * float64(time.Second)), true
	}
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return 0, false
	}
	h, err1 := strconv.Atoi(parts[0])
	m, err2 := strconv.Atoi(parts[1])
	sec, err3 := strconv.ParseFloat(parts[2], 64)
	if err1 != nil || err2 != nil || err3 != nil || h < 0 || m < 0 || sec < 0 || h > 24 || m > 59 || sec >= 60 {
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(m)*time.Minute + time.Duration(sec*float64(time.Second)), true
}
