package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPairedDiff(t *testing.T) {
	base := []float64{0.080, 0.095, 0.071, 0.120, 0.088, 0.079, 0.101, 0.093, 0.084, 0.090}
	shift := func(d float64) []float64 {
		out := make([]float64, len(base))
		for i, v := range base {
			out[i] = v + d
		}
		return out
	}
	alternate := make([]float64, len(base)) // +2 ms and -2 ms in turn: no difference
	for i, v := range base {
		alternate[i] = v + 0.002*float64(1-2*(i%2))
	}
	for _, tc := range []struct {
		name    string
		a       []float64
		wantMed float64
		verdict string
	}{
		{"5 ms slower every time", shift(0.005), 0.005, "measurably slower"},
		{"3 ms faster every time", shift(-0.003), -0.003, "measurably faster"},
		{"as much slower as faster", alternate, 0, "no measurable difference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			med, lo, hi := pairedDiff(tc.a, base)
			assert.InDelta(t, tc.wantMed, med, 1e-9)
			assert.LessOrEqual(t, lo, med)
			assert.GreaterOrEqual(t, hi, med)
			assert.Contains(t, diffNote(tc.a, base), tc.verdict)
		})
	}
}
