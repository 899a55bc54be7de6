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

// MarshalJSON writes a score as a JSON number, always: the infinities are
// 1000000 and -1000000 (Infinity, Pacemaker's own value of INFINITY), so
// that a script compares scores as numbers and reads s >= 1000000 as
// +INFINITY, s <= -1000000 as -INFINITY. (Before, the infinities were the
// strings "INFINITY" and "-INFINITY"; UnmarshalJSON still takes those.)
func (s Score) MarshalJSON() ([]byte, error) {
	return []byte(strconv.FormatInt(int64(clamp(s)), 10)), nil
}

// UnmarshalJSON accepts a number (clamped to the infinities) or the
// strings INFINITY, -INFINITY.
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
