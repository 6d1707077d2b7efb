// Package models is meshguard's shared vocabulary: the flow, edge,
// detection and baseline value types that every stage passes to the next.
//
// It is a leaf: it imports only the standard library, and every other
// meshguard package may import it. Types here sit on the hot path (millions
// of flows a second), so they are plain values: no pointers to chase, no
// maps, no interfaces, and methods that do not allocate unless they say so.
package models
