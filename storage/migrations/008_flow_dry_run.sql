-- dry_run_allow is what Istio's dry-run ALLOW policies said of a request,
-- as the destination proxy logged it (Envoy's rbac filter metadata
-- istio_dry_run_allow_shadow_engine_result, models.DryRun): 0 not logged,
-- 1 allowed, 2 denied. Staged least-privilege policies (package policy)
-- are promoted only when their destination shows allowed and no denied.
-- Rows written before this migration read 0: unknown, never "clean".
--
-- 18.16 has no ADD COLUMN IF NOT EXISTS; there a column that exists
-- already is taken as done (execIdempotent).
ALTER TABLE {{.DB}}.flows ADD COLUMN {{if .Modern}}IF NOT EXISTS {{end}}dry_run_allow UInt8 DEFAULT 0;
