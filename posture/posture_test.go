package posture

import (
	"fmt"
	"testing"
)

func TestBusiestKeepsTheTopEdgesInOrder(t *testing.T) {
	var all []Edge
	for i, n := range []uint64{5, 9, 1, 9, 7, 3, 7} {
		e := Edge{Port: uint16(i)}
		e.Requests = n
		all = append(all, e)
	}
	var got []uint16
	for _, e := range busiest(all, 4) {
		got = append(got, e.Port)
	}
	// 9 (index 1), 9 (3), 7 (4), 7 (6): ties keep their order
	if fmt.Sprint(got) != "[1 3 4 6]" {
		t.Errorf("busiest 4 = ports %v, want [1 3 4 6]", got)
	}
	if n := len(busiest(all, 100)); n != len(all) {
		t.Errorf("busiest 100 of %d = %d", len(all), n)
	}
	if n := len(busiest(all, 0)); n != 0 {
		t.Errorf("busiest 0 = %d", n)
	}
}
