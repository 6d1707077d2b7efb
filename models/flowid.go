package models

import (
	"encoding/binary"
	"encoding/hex"

	"github.com/cespare/xxhash/v2"
)

// FlowID identifies one flow stably across redeliveries: it is derived from
// where the record came from (Kafka topic, partition, offset, and the
// record's position inside the message), never from its content, so a
// message read twice yields the same ids and storage can count each record
// exactly once with count(DISTINCT flow_id).
type FlowID [16]byte

// String returns 32 lowercase hex characters.
func (id FlowID) String() string { return hex.EncodeToString(id[:]) }

// FlowIDBase is the per-message half of a FlowID. Hash the message's
// coordinates once, then derive each record's id with ID(i) for free.
type FlowIDBase struct{ h1, h2 uint64 }

// Two independently seeded 64-bit hashes give a 128-bit id: the chance of
// two messages colliding stays negligible at trillions of messages.
const (
	flowIDSeed1 = 0x6d657368_67756172 // "meshguar"
	flowIDSeed2 = 0x666c6f77_69640001 // "flowid" v1
)

// NewFlowIDBase hashes a Kafka message's coordinates.
func NewFlowIDBase(topic string, partition int32, offset int64) FlowIDBase {
	var buf [12]byte
	binary.LittleEndian.PutUint32(buf[0:4], uint32(partition))
	binary.LittleEndian.PutUint64(buf[4:12], uint64(offset))
	return FlowIDBase{h1: seededHash(flowIDSeed1, topic, buf[:]), h2: seededHash(flowIDSeed2, topic, buf[:])}
}

// ID returns the id of the i-th record of the message. Distinct i always
// give distinct ids: h + i*golden is a bijection of i modulo 2^64, and so
// is the splitmix64 finaliser applied to it.
func (b FlowIDBase) ID(i int) FlowID {
	var id FlowID
	const golden = 0x9e3779b97f4a7c15
	binary.BigEndian.PutUint64(id[0:8], mix64(b.h1+uint64(i)*golden))
	binary.BigEndian.PutUint64(id[8:16], mix64(b.h2+uint64(i)*golden))
	return id
}

func mix64(z uint64) uint64 {
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func seededHash(seed uint64, topic string, coords []byte) uint64 {
	var d xxhash.Digest
	d.ResetWithSeed(seed)
	_, _ = d.WriteString(topic)
	_, _ = d.Write([]byte{0}) // no topic name is a prefix of another's coordinates
	_, _ = d.Write(coords)
	return d.Sum64()
}
