package placement

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
)

// Score is a Pacemaker score: an integer clamped to [-Infinity, +Infinity].
type Score int64

// Infinity is Pacemaker's INFINITY: a score this large is a "must".
const Infinity Score = 1_000_000

// Add sums scores with Pacemaker's arithmetic (pcmk__add_scores):
// -INFINITY wins over anything, including +INFINITY, so a ban is never
// cancelled by a preference; otherwise +INFINITY wins, and finite sums clamp.
func Add(a, b Score) Score {
	switch {
	case a <= -Infinity || b <= -Infinity:
		return -Infinity
	case a >= Infinity || b >= Infinity:
		return Infinity
	}
	return clamp(a + b)
}

func clamp(s Score) Score {
	if s > Infinity {
		return Infinity
	}
	if s < -Infinity {
		return -Infinity
	}
	return s
}

// String prints INFINITY and -INFINITY as Pacemaker does.
func (s Score) String() string {
	switch {
	case s >= Infinity:
		return "INFINITY"
	case s <= -Infinity:
		return "-INFINITY"
	}
	return strconv.FormatInt(int64(s), 10)
}

// MarshalJSON writes finite scores as integers and the infinities as the
// strings "INFINITY" and "-INFINITY".
func (s Score) MarshalJSON() ([]byte, error) {
	if s >= Infinity || s <= -Infinity {
		return json.Marshal(s.String())
	}
	return []byte(strconv.FormatInt(int64(s), 10)), nil
}

// UnmarshalJSON accepts what MarshalJSON writes.
func (s *Score) UnmarshalJSON(b []byte) error {
	var str string
	if err := json.Unmarshal(b, &str); err == nil {
		v, err := ParseScore(str)
		*s = v
		return err
	}
	var n int64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("score: %s is neither an integer nor INFINITY", b)
	}
	*s = clamp(Score(n))
	return nil
}

// ParseScore reads a score as Pacemaker writes them: an integer, or
// INFINITY, +INFINITY, -INFINITY (also "inf", any case). Integers beyond
// INFINITY clamp, as in Pacemaker's char2score.
func ParseScore(v string) (Score, error) {
	t := strings.TrimSpace(v)
	switch strings.ToLower(t) {
	case "infinity", "+infinity", "inf", "+inf":
		return Infinity, nil
	case "-infinity", "-inf":
		return -Infinity, nil
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil {
		// An integer too large for int64 still clamps instead of failing.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			if strings.HasPrefix(t, "-") {
				return -Infinity, nil
			}
			return Infinity, nil
		}
		return 0, fmt.Errorf("score %q: want an integer or [+-]INFINITY", v)
	}
	return clamp(Score(n)), nil
}
