-- Identity resolved from the cluster (package identity): which identity
-- fields of a flow were filled from the pod behind its source IP or the
-- Service behind its destination host (a bitset, models.Resolved), and
-- whether what the record claimed contradicts that (1) while the claim was
-- kept. Rows written before this migration read 0 and 0: everything as
-- reported, nothing known to contradict.
--
-- 18.16 has no ADD COLUMN IF NOT EXISTS; there a column that exists
-- already is taken as done (execIdempotent).
ALTER TABLE {{.DB}}.flows ADD COLUMN {{if .Modern}}IF NOT EXISTS {{end}}identity_resolved UInt8 DEFAULT 0;
ALTER TABLE {{.DB}}.flows ADD COLUMN {{if .Modern}}IF NOT EXISTS {{end}}identity_conflict UInt8 DEFAULT 0;
