-- released marks a snapshot its owner saved as it gave the partition up
-- (a rebalance moved it, or the replica shut down): the partition's newest
-- state, which the next owner waits for before it detects (detect's
-- hand-off). Periodic saves, and rows written before this migration,
-- read 0: maybe behind what their owner holds.
--
-- 18.16 has no ADD COLUMN IF NOT EXISTS; there a column that exists
-- already is taken as done (execIdempotent).
ALTER TABLE {{.DB}}.baselines ADD COLUMN {{if .Modern}}IF NOT EXISTS {{end}}released UInt8 DEFAULT 0;
