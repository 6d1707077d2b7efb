package main

import (
	"context"

	"github.com/segmentio/kafka-go"
)

// dataset is what was produced: the same messages every consumer reads.
type dataset struct {
	topic      string
	partitions int
	messages   int
	records    int
	bytes      int64
	end        map[int]int64 // partition -> end offset
}

// committed returns the group's committed offset per partition (-1 for
// none yet).
func committed(ctx context.Context, client *kafka.Client, group, topic string, partitions int) (map[int]int64, error) {
	req := &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: {}}}
	for p := range partitions {
		req.Topics[topic] = append(req.Topics[topic], p)
	}
	resp, err := client.OffsetFetch(ctx, req)
	if err == nil {
		err = resp.Error
	}
	if err != nil {
		return nil, err
	}
	out := map[int]int64{}
	for _, p := range resp.Topics[topic] {
		if p.Error != nil {
			return nil, p.Error
		}
		out[p.Partition] = p.CommittedOffset
	}
	return out, nil
}
