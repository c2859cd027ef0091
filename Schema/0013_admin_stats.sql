-- 0013_admin_stats.sql: the network's statistics for its administrators (GET /v1/admin/stats).
--
-- One function with the owner's rights, since the figures count rows no single tenant may read
-- (every partnership's timeline, every room's messages); it refuses anyone who is not a network
-- administrator. Only counts leave it, never a row.
--
-- Members are counted as they change, not when asked: institution_counts holds the number of
-- institutions per (status, tier, country), kept by statement-level triggers (transition tables,
-- so a bulk import costs one statement per batch), and registration_counts the registrations per
-- month, so that the statistics read a few hundred rows rather than every institution (0.9 s at a
-- million).

CREATE TABLE institution_counts (
    status          text NOT NULL,
    tier            text NOT NULL,
    country         char(2) NOT NULL,
    n               bigint NOT NULL,
    PRIMARY KEY (status, tier, country)
);
ALTER TABLE institution_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE institution_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON institution_counts TO accord_owner USING (true) WITH CHECK (true);

INSERT INTO institution_counts (status, tier, country, n)
SELECT status, tier, country, count(*) FROM institutions GROUP BY 1, 2, 3;

-- Registrations (institutions that registered, not imported entries) per month of creation, UTC.
CREATE TABLE registration_counts (
    month           date PRIMARY KEY,
    n               bigint NOT NULL
);
ALTER TABLE registration_counts ENABLE ROW LEVEL SECURITY;
ALTER TABLE registration_counts FORCE ROW LEVEL SECURITY;
CREATE POLICY owner_all ON registration_counts TO accord_owner USING (true) WITH CHECK (true);

INSERT INTO registration_counts (month, n)
SELECT date_trunc('month', created_at AT TIME ZONE 'UTC')::date, count(*) FROM institutions WHERE claimed GROUP BY 1;

-- Adds what a statement inserted and subtracts what it deleted (an update does both), each count
-- once, in key order (so that concurrent changes lock the counts in the same order).
CREATE FUNCTION accord_count_institutions() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        WITH d AS (SELECT status, tier, country, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, claimed AS registered, 1 AS delta FROM new_rows),
        counted AS (
            INSERT INTO institution_counts AS c (status, tier, country, n)
            SELECT status, tier, country, sum(delta) FROM d GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (status, tier, country) DO UPDATE SET n = c.n + excluded.n
        )
        INSERT INTO registration_counts AS c (month, n)
        SELECT month, sum(delta) FROM d WHERE registered GROUP BY 1 HAVING sum(delta) <> 0 ORDER BY 1
        ON CONFLICT (month) DO UPDATE SET n = c.n + excluded.n;
    ELSIF TG_OP = 'DELETE' THEN
        WITH d AS (SELECT status, tier, country, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, claimed AS registered, -1 AS delta FROM old_rows),
        counted AS (
            INSERT INTO institution_counts AS c (status, tier, country, n)
            SELECT status, tier, country, sum(delta) FROM d GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (status, tier, country) DO UPDATE SET n = c.n + excluded.n
        )
        INSERT INTO registration_counts AS c (month, n)
        SELECT month, sum(delta) FROM d WHERE registered GROUP BY 1 HAVING sum(delta) <> 0 ORDER BY 1
        ON CONFLICT (month) DO UPDATE SET n = c.n + excluded.n;
    ELSE
        WITH d AS (SELECT status, tier, country, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, claimed AS registered, -1 AS delta FROM old_rows UNION ALL SELECT status, tier, country, date_trunc('month', created_at AT TIME ZONE 'UTC')::date AS month, claimed AS registered, 1 FROM new_rows),
        counted AS (
            INSERT INTO institution_counts AS c (status, tier, country, n)
            SELECT status, tier, country, sum(delta) FROM d GROUP BY 1, 2, 3 HAVING sum(delta) <> 0 ORDER BY 1, 2, 3
            ON CONFLICT (status, tier, country) DO UPDATE SET n = c.n + excluded.n
        )
        INSERT INTO registration_counts AS c (month, n)
        SELECT month, sum(delta) FROM d WHERE registered GROUP BY 1 HAVING sum(delta) <> 0 ORDER BY 1
        ON CONFLICT (month) DO UPDATE SET n = c.n + excluded.n;
    END IF;
    RETURN NULL;
END $$;
CREATE TRIGGER institutions_count_insert AFTER INSERT ON institutions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_count_institutions();
CREATE TRIGGER institutions_count_update AFTER UPDATE ON institutions
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_count_institutions();
CREATE TRIGGER institutions_count_delete AFTER DELETE ON institutions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_count_institutions();

CREATE FUNCTION accord_network_stats() RETURNS jsonb
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    v_result jsonb;
BEGIN
    IF NOT accord_is_network_admin() THEN
        RAISE EXCEPTION 'network administrators only' USING ERRCODE = 'insufficient_privilege';
    END IF;
    WITH grouped AS (
        -- By status, tier and country, from the counts kept as institutions change.
        SELECT status, tier, country, sum(n) AS n FROM institution_counts WHERE n <> 0 GROUP BY GROUPING SETS ((status), (tier), (country))
    ), months AS (
        SELECT m::date AS month FROM generate_series(date_trunc('month', now() AT TIME ZONE 'UTC') - interval '23 months',
                                                      date_trunc('month', now() AT TIME ZONE 'UTC'), interval '1 month') m
    ), days AS (
        SELECT d::date AS day FROM generate_series(current_date - 29, current_date, interval '1 day') d
    )
    SELECT jsonb_build_object(
        'institutions', jsonb_build_object(
            'total', (SELECT coalesce(sum(n), 0) FROM grouped WHERE status IS NOT NULL),
            'byStatus', (SELECT coalesce(jsonb_object_agg(status, n), '{}') FROM grouped WHERE status IS NOT NULL),
            'byTier', (SELECT coalesce(jsonb_object_agg(tier, n), '{}') FROM grouped WHERE tier IS NOT NULL),
            'byCountry', (SELECT coalesce(jsonb_object_agg(country, n), '{}') FROM grouped WHERE country IS NOT NULL),
            'byRegion', (SELECT coalesce(jsonb_object_agg(region, n), '{}') FROM (
                SELECT coalesce(c.region, 'Unknown') AS region, sum(g.n) AS n
                FROM grouped g LEFT JOIN countries c ON c.code = g.country WHERE g.country IS NOT NULL GROUP BY 1) r)),
        'perMonth', (SELECT jsonb_agg(jsonb_build_object(
                'month', to_char(months.month, 'YYYY-MM'),
                'registrations', coalesce((SELECT r.n FROM registration_counts r WHERE r.month = months.month), 0),
                'admissions', (SELECT count(*) FROM audit_events a
                               WHERE a.action = 'institution.approve' AND a.occurred_at >= months.month::timestamp AT TIME ZONE 'UTC'
                                 AND a.occurred_at < (months.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'),
                'agreementsApproved', (SELECT count(*) FROM partnership_events e
                                       WHERE e.kind IN ('partnership.activated', 'agreement.in_effect')
                                         AND e.at >= months.month::timestamp AT TIME ZONE 'UTC'
                                         AND e.at < (months.month + interval '1 month')::timestamp AT TIME ZONE 'UTC'))
                ORDER BY months.month) FROM months),
        'partnerships', jsonb_build_object(
            'byStage', (SELECT coalesce(jsonb_object_agg(stage, n), '{}') FROM (SELECT stage, count(*) AS n FROM partnerships GROUP BY stage) s)),
        'rooms', jsonb_build_object(
            'total', (SELECT count(*) FROM rooms),
            'activeLast30Days', (SELECT count(DISTINCT room_id) FROM room_messages WHERE created_at >= current_date - 29),
            'messagesPerDay', (SELECT jsonb_agg(jsonb_build_object(
                    'day', days.day::text,
                    'messages', (SELECT count(*) FROM room_messages m WHERE m.created_at >= days.day AND m.created_at < days.day + 1))
                    ORDER BY days.day) FROM days)),
        'directory', jsonb_build_object('entries', (SELECT count(*) FROM directory_entries))
    ) INTO v_result;
    RETURN v_result;
END $$;
GRANT EXECUTE ON FUNCTION accord_network_stats() TO accord_app;

CREATE INDEX room_messages_created_idx ON room_messages (created_at);
CREATE INDEX audit_events_action_time_idx ON audit_events (action, occurred_at);
