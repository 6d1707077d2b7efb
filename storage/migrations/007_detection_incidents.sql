-- incident_id groups the detections of one attacker within detect.hold
-- (models.Detection.IncidentID): the id of the incident's first detection,
-- its head. Rows written before this migration read '' and are each their
-- own incident.
--
-- 18.16 has no ADD COLUMN IF NOT EXISTS; there a column that exists
-- already is taken as done (execIdempotent).
ALTER TABLE {{.DB}}.detections ADD COLUMN {{if .Modern}}IF NOT EXISTS {{end}}incident_id String DEFAULT '';
