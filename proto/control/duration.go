package control

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// DurationForms names the accepted forms, for error messages.
const DurationForms = "seconds (900, as a number or a string) or numbers with units d, h, m, s (90s, 30m, 1h30m, 2d)"

// Duration is a duration argument: a JSON number of seconds, or a string in the forms of
// ParseDuration. It marshals as whole seconds.
type Duration time.Duration

// UnmarshalJSON accepts 900, 1.5, "900", "30m", "1h30m", "2d".
func (d *Duration) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '"' {
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		v, err := ParseDuration(s)
		if err != nil {
			return err
		}
		*d = Duration(v)
		return nil
	}
	f, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("duration %s: want %s", b, DurationForms)
	}
	if f < 0 || f > float64(MaxInterval/time.Second)*10 {
		return fmt.Errorf("duration %s: out of range", b)
	}
	*d = Duration(f * float64(time.Second))
	return nil
}

// MarshalJSON writes whole seconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(time.Duration(d)/time.Second), 10)), nil
}

// ParseDuration reads "900" (seconds) or numbers with units d, h, m, s ("90s", "30m",
// "1h30m", "2d"), the forms the plugin accepts for --dmtcp-interval.
func ParseDuration(s string) (time.Duration, error) {
	in := s
	s = strings.TrimSpace(s)
	if s == "" {
		return 0, fmt.Errorf("duration %q: empty; want %s", in, DurationForms)
	}
	if n, err := strconv.ParseUint(s, 10, 32); err == nil {
		return time.Duration(n) * time.Second, nil
	}
	var total time.Duration
	for s != "" {
		i := 0
		for i < len(s) && s[i] >= '0' && s[i] <= '9' {
			i++
		}
		if i == 0 || i == len(s) || i > 9 {
			return 0, fmt.Errorf("duration %q: want %s", in, DurationForms)
		}
		n, _ := strconv.Atoi(s[:i])
		var unit time.Duration
		switch s[i] {
		case 'd':
			unit = 24 * time.Hour
		case 'h':
			unit = time.Hour
		case 'm':
			unit = time.Minute
		case 's':
			unit = time.Second
		default:
			return 0, fmt.Errorf("duration %q: unit %q: want %s", in, s[i], DurationForms)
		}
		total += time.Duration(n) * unit
		if total > 10*MaxInterval {
			return 0, fmt.Errorf("duration %q: too long", in)
		}
		s = s[i+1:]
	}
	return total, nil
}
