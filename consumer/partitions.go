package consumer

import "context"

// Partitions is the seam for a stage that keeps state per Kafka partition
// (the detector, ingest's AfterStore stage): ingest tells it of every
// rebalance in order with the flows, PartitionsRevoked after the last
// flow of those partitions it handed on, PartitionsAssigned before the
// first. Partitions are numbers across the telemetry topics: one is held
// while any topic's partition of that number is assigned.
type Partitions interface {
	PartitionsRevoked(ctx context.Context, partitions []Partition)
	PartitionsAssigned(ctx context.Context, partitions []Partition)
}

// Partition is one partition number in a rebalance.
type Partition struct {
	ID int32
	// Position is where reading the partition stands, as a token to
	// compare for equality only: on a revocation, just past the last
	// record handed on; on an assignment, where reading starts (the
	// group's committed offsets). Equal tokens mean the new owner starts
	// exactly where the old one stopped.
	Position string
	// HandedOver (assignments): another consumer read the partition since
	// this one last committed it, so its state is that consumer's to
	// release.
	HandedOver bool
}
