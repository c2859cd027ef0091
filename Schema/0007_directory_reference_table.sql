-- 0007_directory_reference_table.sql: the directory as a reference table, with what its facets need.
--
-- 1. No row-level security on the directory. 0006 put it on directory_entries and directory_words
--    (policy: any signed-in identity). Under row-level security PostgreSQL evaluates the policy
--    before any user condition whose operator is not LEAKPROOF, so such conditions cannot drive an
--    index scan: `document @@ tsquery` and `tags && text[]` (neither operator is leakproof) turned
--    every search into a sequential scan of all entries — seconds at a million institutions
--    (Benchmarks/README.md). The two tables hold only what every member of the network may read:
--    the published profiles of active, listed institutions and the words of their names. They are
--    reference data like the countries and ISCED-F tables (a Citus deployment would keep them as
--    reference tables): accord_app reads them, only the owner writes them, through the institutions
--    triggers; private profile parts and pending, suspended or unlisted institutions never reach them.
-- 2. Compact facet columns: `languages` (the teaching language codes) next to the activity and field
--    bit masks, so that facets are counted with a few integer operations per entry instead of
--    unnesting every tag. fields_mask gives ISCED-F broad field 99 (field unknown) bit 11.
-- 3. A covering index of the activity and field masks: recommendations score every entry from it
--    with an index-only scan, without reading the wide rows.
-- 4. Words of one or two letters ("of", "de", "la", "8") no longer take part in a query that has a
--    longer word: as prefixes they match most entries ("of:*" matches every "offers"), and their
--    intersection with the real words cost hundreds of milliseconds for nothing.
-- 5. directory_tag_counts: how many entries carry each tag ('#': all entries), kept exact by the
--    same triggers. A facet whose other conditions are all empty (the directory with no query, or
--    with only that facet's own filter) reads its counts here instead of counting a million rows.

DROP POLICY IF EXISTS directory_signed_in ON directory_entries;
DROP POLICY IF EXISTS directory_words_signed_in ON directory_words;
DROP POLICY IF EXISTS owner_all ON directory_entries;
DROP POLICY IF EXISTS owner_all ON directory_words;
ALTER TABLE directory_entries NO FORCE ROW LEVEL SECURITY;
ALTER TABLE directory_entries DISABLE ROW LEVEL SECURITY;
ALTER TABLE directory_words NO FORCE ROW LEVEL SECURITY;
ALTER TABLE directory_words DISABLE ROW LEVEL SECURITY;
REVOKE ALL ON directory_entries, directory_words FROM accord_app;
GRANT SELECT ON directory_entries, directory_words TO accord_app;

CREATE FUNCTION accord_fields_mask(jsonb) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(bit_or(1 << CASE WHEN left(s ->> 'code', 2) = '99' THEN 11 ELSE left(s ->> 'code', 2)::integer END), 0)
          FROM jsonb_array_elements($1) s $$;

ALTER TABLE directory_entries ADD COLUMN IF NOT EXISTS languages text[] NOT NULL DEFAULT '{}';
UPDATE directory_entries SET
    languages = ARRAY(SELECT DISTINCT l ->> 'code' FROM jsonb_array_elements(teaching_languages) l ORDER BY 1),
    fields_mask = accord_fields_mask(subject_areas);

CREATE INDEX directory_entries_complement ON directory_entries (offers_mask, seeks_mask, fields_mask) INCLUDE (id);

CREATE TABLE directory_tag_counts (
    tag     text PRIMARY KEY,
    entries integer NOT NULL CHECK (entries >= 0)
);
INSERT INTO directory_tag_counts (tag, entries)
SELECT t, count(*) FROM directory_entries, unnest(tags) t GROUP BY t
UNION ALL SELECT '#', count(*) FROM directory_entries;
GRANT SELECT ON directory_tag_counts TO accord_app;

-- Adds (p_sign 1) or removes (-1) the tags of the given entries, as they are now, to the counts.
-- Counters are locked in tag order, so that concurrent changes cannot deadlock. (Removal is an
-- UPDATE: INSERT … ON CONFLICT checks the proposed row, a negative count, before it sees the conflict.)
CREATE FUNCTION accord_directory_count(p_ids uuid[], p_sign integer) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF p_sign > 0 THEN
        INSERT INTO directory_tag_counts AS c (tag, entries)
        SELECT t, count(*) FROM (
            SELECT unnest(e.tags) AS t FROM directory_entries e WHERE e.id = ANY (p_ids)
            UNION ALL
            SELECT '#' FROM directory_entries e WHERE e.id = ANY (p_ids)
        ) changed
        GROUP BY t ORDER BY t
        ON CONFLICT (tag) DO UPDATE SET entries = c.entries + excluded.entries;
    ELSE
        WITH changed AS (
            SELECT t, count(*) AS n FROM (
                SELECT unnest(e.tags) AS t FROM directory_entries e WHERE e.id = ANY (p_ids)
                UNION ALL
                SELECT '#' FROM directory_entries e WHERE e.id = ANY (p_ids)
            ) x GROUP BY t
        ),
        locked AS (
            SELECT c.tag FROM directory_tag_counts c JOIN changed ON changed.t = c.tag ORDER BY c.tag FOR UPDATE OF c
        )
        UPDATE directory_tag_counts c SET entries = c.entries - changed.n
        FROM changed, locked WHERE c.tag = changed.t AND locked.tag = c.tag;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION accord_directory_count(uuid[], integer) FROM PUBLIC;

CREATE OR REPLACE FUNCTION accord_directory_sync() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        PERFORM accord_directory_count(ARRAY(SELECT id FROM old_rows), -1);
        DELETE FROM directory_entries WHERE id IN (SELECT id FROM old_rows);
        RETURN NULL;
    END IF;
    PERFORM accord_directory_count(ARRAY(SELECT id FROM new_rows), -1);
    DELETE FROM directory_entries
    WHERE id IN (SELECT n.id FROM new_rows n WHERE NOT (n.status = 'active' AND n.listed AND n.claim_of IS NULL));
    INSERT INTO directory_entries AS d (
        id, names, sort_name, names_folded, acronym, acronym_folded, schac, country, city, type, tier,
        student_count, subject_areas, teaching_languages, offers, seeks, services, description, goals,
        offers_mask, seeks_mask, fields_mask, languages, tags, document, created_at)
    SELECT n.id, n.names, accord_fold(n.names -> 0 ->> 'value'),
           accord_fold(concat_ws(' ', nt.names_text, n.acronym)),
           n.acronym, accord_fold(n.acronym), n.schac, n.country, n.city, n.type, n.tier,
           n.student_count, n.subject_areas, n.teaching_languages, n.offers, n.seeks, n.services,
           n.description, n.goals,
           accord_activity_mask(n.offers), accord_activity_mask(n.seeks),
           accord_fields_mask(n.subject_areas),
           ARRAY(SELECT DISTINCT l ->> 'code' FROM jsonb_array_elements(n.teaching_languages) l ORDER BY 1),
           ARRAY(SELECT DISTINCT t FROM (
                SELECT 'c:' || n.country
                UNION ALL
                SELECT 'r:' || x FROM countries c,
                    unnest(ARRAY[c.region_code, c.sub_region_code, c.intermediate_region_code]) x
                    WHERE c.code = n.country AND nullif(x, '') IS NOT NULL
                UNION ALL SELECT 't:' || n.type
                UNION ALL SELECT 'k:' || n.tier
                UNION ALL
                SELECT 'f:' || left(s ->> 'code', len) FROM jsonb_array_elements(n.subject_areas) s,
                    generate_series(2, length(s ->> 'code')) len
                UNION ALL SELECT 'l:' || (l ->> 'code') FROM jsonb_array_elements(n.teaching_languages) l
                UNION ALL
                SELECT 'l:' || (l ->> 'code') || ':' || c.code FROM jsonb_array_elements(n.teaching_languages) l
                    JOIN cefr_levels c ON c.rank <= (SELECT rank FROM cefr_levels WHERE code = l ->> 'level')
                UNION ALL SELECT 'o:' || x FROM unnest(n.offers) x
                UNION ALL SELECT 's:' || x FROM unnest(n.seeks) x
                UNION ALL SELECT 'v:' || x FROM unnest(n.services) x
           ) tags(t) ORDER BY t),
           setweight(to_tsvector('accord_search', concat_ws(' ', nt.names_text, n.acronym)), 'A')
             || setweight(to_tsvector('accord_search', concat_ws(' ', n.city, n.schac)), 'B')
             || setweight(to_tsvector('accord_search', coalesce(n.description, '')), 'C')
             || setweight(to_tsvector('accord_search', coalesce(n.goals, '')), 'D'),
           n.created_at
    FROM new_rows n,
         LATERAL (SELECT string_agg(x ->> 'value', ' ') AS names_text FROM jsonb_array_elements(n.names) x) nt
    WHERE n.status = 'active' AND n.listed AND n.claim_of IS NULL
    ON CONFLICT (id) DO UPDATE SET
        names = EXCLUDED.names, sort_name = EXCLUDED.sort_name, names_folded = EXCLUDED.names_folded,
        acronym = EXCLUDED.acronym, acronym_folded = EXCLUDED.acronym_folded, schac = EXCLUDED.schac,
        country = EXCLUDED.country, city = EXCLUDED.city, type = EXCLUDED.type, tier = EXCLUDED.tier,
        student_count = EXCLUDED.student_count, subject_areas = EXCLUDED.subject_areas,
        teaching_languages = EXCLUDED.teaching_languages, offers = EXCLUDED.offers, seeks = EXCLUDED.seeks,
        services = EXCLUDED.services, description = EXCLUDED.description, goals = EXCLUDED.goals,
        offers_mask = EXCLUDED.offers_mask, seeks_mask = EXCLUDED.seeks_mask, fields_mask = EXCLUDED.fields_mask,
        languages = EXCLUDED.languages,
        tags = EXCLUDED.tags, document = EXCLUDED.document, created_at = EXCLUDED.created_at;
    PERFORM accord_directory_count(ARRAY(SELECT id FROM new_rows), 1);
    INSERT INTO directory_words (word)
    SELECT DISTINCT w
    FROM new_rows n,
         LATERAL (SELECT string_agg(x ->> 'value', ' ') AS names_text FROM jsonb_array_elements(n.names) x) nt,
         regexp_split_to_table(accord_fold(concat_ws(' ', nt.names_text, n.acronym, n.city)), '[[:space:][:punct:][:cntrl:]]+') w
    WHERE n.status = 'active' AND n.listed AND n.claim_of IS NULL AND length(w) BETWEEN 3 AND 60
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION accord_directory_tsquery(p_q text, p_fuzzy boolean) RETURNS tsquery
LANGUAGE sql STABLE SET search_path = public, pg_temp AS $$
    SELECT string_agg(
        CASE WHEN p_fuzzy AND length(w) >= 4
                  AND NOT EXISTS (SELECT 1 FROM directory_words d
                                  WHERE d.word >= w COLLATE "C" AND d.word < (w || chr(1114111)) COLLATE "C")
             THEN '(' || concat_ws(' | ', quote_literal(w) || ':*', (
                      SELECT string_agg(quote_literal(s.word), ' | ')
                      FROM (SELECT d.word FROM directory_words d WHERE d.word % w
                            ORDER BY similarity(d.word, w) DESC, d.word LIMIT 3) s)) || ')'
             ELSE quote_literal(w) || ':*'
        END, ' & ' ORDER BY n)::tsquery
    FROM (SELECT w, n FROM (
              SELECT w, n, max(length(w)) OVER () AS longest
              FROM regexp_split_to_table(accord_fold(p_q), '[[:space:][:punct:][:cntrl:]]+') WITH ORDINALITY AS t (w, n)
              WHERE w <> '') split
          WHERE length(w) > 2 OR longest <= 2
          ORDER BY n LIMIT 16) words
$$;
