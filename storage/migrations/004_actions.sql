-- actions: append-only audit log of what respond did or would have done
-- (mode dry-run or enforce): one row per state change, never updated.
CREATE TABLE IF NOT EXISTS {{.DB}}.actions (
    action_id              String,
    at                     DateTime('UTC'),
    detection_id           String,
    kind                   {{.LC}},
    mode                   {{.LC}},
    state                  {{.LC}},
    actor                  String,
    reason                 String,
    target                 String,
    policy_name            String,
    policy_namespace       String,
    expires_at             DateTime('UTC')
) ENGINE = MergeTree
PARTITION BY toYYYYMM(at)
ORDER BY (at, action_id)
SETTINGS index_granularity = 8192;
