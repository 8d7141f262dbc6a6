-- 0001: the events table (one row per processed event version) and the sink's
-- progress table that makes loading exactly-once.
--
-- Placeholders (rendered by schemas::clickhouse): {{db}} database, {{on_cluster}}
-- " ON CLUSTER name" or "", {{local:T}} the table that holds the data (T, or T_local
-- on a ClickHouse cluster), {{engine:E(args)}} E or its Replicated form,
-- {{ttl_days}} raw retention. "-- @distributed T key" adds, on a cluster, a
-- Distributed table T over T_local.

CREATE TABLE IF NOT EXISTS {{db}}.{{local:events}}{{on_cluster}}
(
    id                 String CODEC(ZSTD(1)),
    cluster            LowCardinality(String),
    cluster_uid        LowCardinality(String),
    event_uid          String CODEC(ZSTD(1)),
    resource_version   String CODEC(ZSTD(1)),
    watch_kind         LowCardinality(String),
    api_shape          LowCardinality(String),
    namespace          LowCardinality(String),
    kind               LowCardinality(String),
    name               String CODEC(ZSTD(1)),
    object_uid         String CODEC(ZSTD(1)),
    field_path         String CODEC(ZSTD(1)),
    event_type         LowCardinality(String),
    reason             LowCardinality(String),
    category           LowCardinality(String),
    severity           LowCardinality(String),
    rule               LowCardinality(String),
    component          LowCardinality(String),
    reporting_instance LowCardinality(String),
    action             LowCardinality(String),
    message            String CODEC(ZSTD(3)),
    count              Int64,
    occurrences        Int64,
    event_time         DateTime64(3, 'UTC'),
    first_seen         DateTime64(3, 'UTC'),
    last_seen          DateTime64(3, 'UTC'),
    observed_at        DateTime64(3, 'UTC'),
    correlation_id     String CODEC(ZSTD(1)),
    container          LowCardinality(String),
    image              String CODEC(ZSTD(1)),
    node               LowCardinality(String),
    volume             String CODEC(ZSTD(1)),
    exit_code          Nullable(Int32),
    metadata           Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    labels             Map(LowCardinality(String), String) CODEC(ZSTD(1)),
    leader_epoch       Int64,
    kafka_partition    Int32,
    src_partition      Int32,
    src_offset         Int64,
    src_seq            Int32,
    INDEX idx_correlation correlation_id TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_event_uid event_uid TYPE bloom_filter(0.01) GRANULARITY 4,
    INDEX idx_message message TYPE tokenbf_v1(8192, 3, 0) GRANULARITY 4
)
ENGINE = {{engine:ReplacingMergeTree}}
PARTITION BY toDate(event_time)
ORDER BY (cluster, namespace, kind, name, event_time, id)
TTL toDateTime(event_time) + INTERVAL {{ttl_days}} DAY DELETE
SETTINGS non_replicated_deduplication_window = 1000;

-- @distributed events cityHash64(cluster_uid)

-- The high-water mark of what the sink stored, per output table, Kafka partition
-- it was read from and raw partition it came from, written by the same INSERT as the rows (through the view below), so
-- it can never disagree with them. The sink reads it on partition assignment and
-- drops records at or below it: replays (processor or sink restarts) then add
-- nothing.
CREATE TABLE IF NOT EXISTS {{db}}.{{local:sink_progress}}{{on_cluster}}
(
    table_name      LowCardinality(String),
    kafka_partition Int32,
    src_partition   Int32,
    high_water    AggregateFunction(max, Tuple(Int64, Int32))
)
ENGINE = {{engine:AggregatingMergeTree}}
ORDER BY (table_name, kafka_partition, src_partition);

-- @distributed sink_progress kafka_partition

CREATE MATERIALIZED VIEW IF NOT EXISTS {{db}}.{{local:events_progress_mv}}{{on_cluster}}
TO {{db}}.{{local:sink_progress}}
AS SELECT 'events' AS table_name, kafka_partition, src_partition, maxState(tuple(src_offset, src_seq)) AS high_water
FROM {{db}}.{{local:events}}
GROUP BY kafka_partition, src_partition;
