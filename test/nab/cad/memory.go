package cad

import "slices"

// memory is CAD OSE's context memory (ContextOperator). A context is a
// left semi-context (a set of facts) followed by a right one; each side
// keeps its semi-contexts by the hash of their facts and, for each fact,
// the semi-contexts that hold it, so that crossing an input with a side
// touches only the semi-contexts that share a fact with it.
type memory struct {
	maxLeft  int
	sides    [2]side // 0 left, 1 right
	contexts []context
	// newID is the context the current step's zero-level pair created,
	// which does not activate in that step. CAD OSE resets it to False,
	// which Python compares equal to 0: so context 0 never activates
	// either, and 0 is the reset value here.
	newID int
}

type side struct {
	byFact  map[int64][]int // fact -> semi-contexts holding it, in creation order
	byHash  map[int64]int   // Python hash of the facts -> semi-context
	semis   []*semi
	crossed []int // semi-contexts sharing a fact with the last input, in creation order
}

type semi struct {
	crossed []int64 // the facts of the last input it holds, in input order
	n       int     // its number of facts
	// right maps, for a left semi-context, each right one to their
	// context; order is right's keys in insertion order (Python's dict).
	right map[int]int
	order []int
}

type context struct {
	count  int  // how often it has come true
	zero   bool // a zero-level context: seen as (last facts, input) itself
	lh, rh int64
}

type activeContext struct {
	id, count int
	lh, rh    int64
}

type pair struct{ l, r []int64 }

func newMemory(maxLeft int) memory {
	m := memory{maxLeft: maxLeft}
	for i := range m.sides {
		m.sides[i] = side{byFact: map[int64][]int{}, byHash: map[int64]int{}}
	}
	return m
}

// addZero saves the zero-level pair (the last step's facts, this input's)
// and reports whether it is new; a known context becomes zero-level.
func (m *memory) addZero(p pair) bool {
	cid, isNew := m.context(p, true)
	if isNew {
		m.newID = cid
		return true
	}
	m.contexts[cid].zero = true
	return false
}

// add saves every pair not yet known and returns how many were new.
func (m *memory) add(pairs []pair) int {
	n := 0
	for _, p := range pairs {
		if _, isNew := m.context(p, false); isNew {
			n++
		}
	}
	return n
}

// context returns p's context, saving it (and its semi-contexts) if new.
func (m *memory) context(p pair, zero bool) (int, bool) {
	lid := m.sides[0].semiFor(p.l, true)
	rid := m.sides[1].semiFor(p.r, false)
	ls := m.sides[0].semis[lid]
	if cid, ok := ls.right[rid]; ok {
		return cid, false
	}
	cid := len(m.contexts)
	ls.right[rid] = cid
	ls.order = append(ls.order, rid)
	m.contexts = append(m.contexts, context{zero: zero, lh: pyHash(p.l), rh: pyHash(p.r)})
	return cid, true
}

func (s *side) semiFor(facts []int64, left bool) int {
	h := pyHash(facts)
	if id, ok := s.byHash[h]; ok {
		return id
	}
	id := len(s.semis)
	s.byHash[h] = id
	sm := &semi{n: len(facts)}
	if left {
		sm.right = map[int]int{}
	}
	s.semis = append(s.semis, sm)
	for _, f := range facts {
		s.byFact[f] = append(s.byFact[f], id)
	}
	return id
}

// cross records, for every semi-context of the side, the input's facts it
// holds.
func (s *side) cross(facts []int64) {
	for _, id := range s.crossed {
		s.semis[id].crossed = s.semis[id].crossed[:0]
	}
	s.crossed = s.crossed[:0]
	for _, f := range facts {
		for _, id := range s.byFact[f] {
			sm := s.semis[id]
			if len(sm.crossed) == 0 {
				s.crossed = append(s.crossed, id)
			}
			sm.crossed = append(sm.crossed, f)
		}
	}
	slices.Sort(s.crossed)
}

// activate walks the contexts whose left side the last step's facts
// crossed (updateContextsAndGetActive): a context is selected when its
// left side was wholly there and active when its right side is wholly in
// this input too; where a zero-level context was partly matched and the
// step made a new zero-level context, the matched parts are a potential
// new context.
func (m *memory) activate(newZero bool) (act []activeContext, selected int, pot []pair) {
	rights := m.sides[1].semis
	for _, lid := range m.sides[0].crossed {
		ls := m.sides[0].semis[lid]
		whole := ls.n == len(ls.crossed)
		short := len(ls.crossed) <= m.maxLeft
		for _, rid := range ls.order {
			cid := ls.right[rid]
			if cid == m.newID {
				continue
			}
			cv := &m.contexts[cid]
			r := rights[rid]
			if whole {
				selected++
			}
			if len(r.crossed) == 0 {
				continue
			}
			if whole && r.n == len(r.crossed) {
				cv.count++
				act = append(act, activeContext{cid, cv.count, cv.lh, cv.rh})
			} else if cv.zero && newZero && short {
				pot = append(pot, pair{slices.Clone(ls.crossed), slices.Clone(r.crossed)})
			}
		}
	}
	m.newID = 0
	return act, selected, pot
}

// key identifies a pair's facts, for counting distinct pairs.
func (p pair) key() string {
	b := make([]byte, 0, 8*(len(p.l)+len(p.r))+1)
	for _, f := range p.l {
		b = appendFact(b, f)
	}
	b = append(b, '|')
	for _, f := range p.r {
		b = appendFact(b, f)
	}
	return string(b)
}

func appendFact(b []byte, f int64) []byte {
	for i := range 8 {
		b = append(b, byte(f>>(8*i)))
	}
	return b
}

// pyHash is Python 2's hash of a tuple of ints (tuplehash), which CAD OSE
// keys semi-contexts by and breaks ties among active contexts with.
func pyHash(t []int64) int64 {
	x := int64(0x345678)
	mult := int64(1000003)
	for i, y := range t {
		if y == -1 {
			y = -2
		}
		x = (x ^ y) * mult
		rest := int64(len(t) - 1 - i)
		mult += 82520 + rest + rest
	}
	x += 97531
	if x == -1 {
		x = -2
	}
	return x
}
