-- 0002: rollups of the events table, filled by materialized views in the same
-- INSERT as the raw rows, so they are exactly as exact as the raw table (which the
-- sink loads exactly once).
--
-- Which to query: a dashboard over more than a day or so reads `events_per_hour`;
-- up to the raw retention, `events_per_minute`; only drill-downs to single events
-- read `events`. Both rollups are SummingMergeTree: rows of one key merge lazily, so
-- always read them with sum(events), sum(occurrences) ... GROUP BY.
--
-- Columns: `events` counts event versions (rows), `occurrences` sums what those
-- versions added (a repeat with count 5 → 8 adds 3), which is the number people
-- mean by "how often did this happen".
--
-- ORDER BY (cluster, minute, namespace, category, severity, reason): the usual
-- question is "this cluster (or the fleet) over this time range, split by one of
-- the dimensions"; time comes right after cluster so a range prunes granules,
-- and the remaining dimensions make the summing key.

CREATE TABLE IF NOT EXISTS {{db}}.{{local:events_per_minute}}{{on_cluster}}
(
    minute      DateTime('UTC'),
    cluster     LowCardinality(String),
    namespace   LowCardinality(String),
    category    LowCardinality(String),
    severity    LowCardinality(String),
    reason      LowCardinality(String),
    events      UInt64,
    occurrences Int64
)
ENGINE = {{engine:SummingMergeTree}}
PARTITION BY toDate(minute)
ORDER BY (cluster, minute, namespace, category, severity, reason)
TTL minute + INTERVAL {{ttl_days}} DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed events_per_minute cityHash64(cluster)

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:events_per_minute_mv}}{{on_cluster}}
TO {{db}}.{{local:events_per_minute}}
AS SELECT
    toStartOfMinute(event_time) AS minute,
    cluster, namespace, category, severity, reason,
    count() AS events,
    sum(occurrences) AS occurrences
FROM {{db}}.{{local:events}}
GROUP BY minute, cluster, namespace, category, severity, reason;

-- Hourly rollup, kept for a year whatever the raw retention is.
CREATE TABLE IF NOT EXISTS {{db}}.{{local:events_per_hour}}{{on_cluster}}
(
    hour        DateTime('UTC'),
    cluster     LowCardinality(String),
    namespace   LowCardinality(String),
    category    LowCardinality(String),
    severity    LowCardinality(String),
    reason      LowCardinality(String),
    events      UInt64,
    occurrences Int64
)
ENGINE = {{engine:SummingMergeTree}}
PARTITION BY toYYYYMM(hour)
ORDER BY (cluster, hour, namespace, category, severity, reason)
TTL hour + INTERVAL 365 DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed events_per_hour cityHash64(cluster)

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:events_per_hour_mv}}{{on_cluster}}
TO {{db}}.{{local:events_per_hour}}
AS SELECT
    toStartOfHour(event_time) AS hour,
    cluster, namespace, category, severity, reason,
    count() AS events,
    sum(occurrences) AS occurrences
FROM {{db}}.{{local:events}}
GROUP BY hour, cluster, namespace, category, severity, reason;
