-- 0005: when each event row became queryable.
--
-- `stored_at` is filled by ClickHouse at INSERT (the sink names its columns, so
-- the default applies): `stored_at - observed_at` is the end-to-end latency
-- from the collector receiving an event to a query seeing it, measured without
-- any clock but the machine's own. `scripts/demo` reports its quantiles.
ALTER TABLE {{db}}.{{local:events}}{{on_cluster}}
    ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1));

-- On a cluster the Distributed table needs the column too (on one node this is
-- the same table again, and IF NOT EXISTS makes it a no-op).
ALTER TABLE {{db}}.events{{on_cluster}}
    ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3) CODEC(Delta, ZSTD(1));
