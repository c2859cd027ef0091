-- 0006_directory.sql: the partner directory.
--
-- directory_entries holds the published profile of every active, listed institution (imported,
-- unclaimed entries included), shaped for search: a weighted tsvector over names, acronym, city,
-- SCHAC code, description and goals (accent- and case-insensitive through the accord_search text
-- search configuration), one array of tags that every filter can read through a single GIN index, and
-- compact facet columns (country, type, bit masks of activities and broad fields, language codes).
-- Statement-level triggers on institutions keep it in step; pending, rejected, suspended, unlisted
-- and claim rows are never in it.
--
-- A reference table, without row-level security. It holds only what every member of the network may
-- read, like the countries and ISCED-F tables (and a Citus deployment would keep it as a reference
-- table): accord_app reads it, only the owner writes it, through the triggers. Row-level security is
-- not merely unneeded here but harmful: PostgreSQL evaluates a policy before any condition whose
-- operator is not LEAKPROOF, so such conditions cannot drive an index scan, and neither `@@` (full
-- text) nor `&&` (array overlap) is leakproof — under a policy every search was a sequential scan
-- of all entries, seconds at a million institutions (Benchmarks/README.md). The API still requires a
-- session for every directory route.
--
-- Tags (one text each, prefix:value):
--   c:BE        country                    r:150 r:155  UN M49 region, sub-region, intermediate region
--   t:college   type                       k:premium    tier
--   f:07 f:071 f:0714   every ISCED-F code taught, with all its ancestors (a broad code matches all below)
--   l:fr        teaching language          l:fr:A1 … l:fr:B2   every CEFR level it reaches (B2 ⇒ A1…B2)
--   o:joint_degree offers                  s:staff_exchange seeks     v:visa_support services
--
-- directory_words is the vocabulary of names, acronyms and cities, with a trigram index: a query word
-- that is the prefix of no known word is widened to the known words most similar to it, which is
-- how a misspelled name still finds its institution without a trigram scan of every profile.
--
-- directory_tag_counts says how many entries carry each tag ('#': all entries), kept exact by the
-- triggers: a facet whose other conditions are all empty (no query, or only that facet's own filter)
-- is read there instead of counted over a million rows, and the server uses the counts to decide
-- which filters are selective enough to drive an index scan.

-- Accent- and case-folding, immutable so that it can be used in indexes and generated values (the
-- unaccent rules file is fixed for the life of a cluster).
CREATE FUNCTION accord_fold(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT lower(public.unaccent('public.unaccent'::regdictionary, $1)) $$;

CREATE TEXT SEARCH CONFIGURATION accord_search (COPY = pg_catalog.simple);
ALTER TEXT SEARCH CONFIGURATION accord_search
    ALTER MAPPING FOR asciiword, asciihword, hword_asciipart, word, hword, hword_part
    WITH public.unaccent, pg_catalog.simple;

CREATE TABLE directory_entries (
    id              uuid PRIMARY KEY REFERENCES institutions (id) ON DELETE CASCADE,
    names           jsonb NOT NULL,
    -- The first name, folded: sort by name.
    sort_name       text NOT NULL,
    -- All names and the acronym, folded: how close a name is to the query.
    names_folded    text NOT NULL,
    acronym         text,
    acronym_folded  text,
    schac           text NOT NULL,
    country         char(2) NOT NULL,
    city            text,
    type            text NOT NULL,
    tier            text NOT NULL,
    student_count   integer,
    subject_areas   jsonb NOT NULL,
    teaching_languages jsonb NOT NULL,
    offers          text[] NOT NULL,
    seeks           text[] NOT NULL,
    services        text[] NOT NULL,
    description     text,
    goals           text,
    -- Bit i set: offers / seeks the i-th activity of accord_activities; broad ISCED fields (bit =
    -- the two-digit code, 11 for 99 "field unknown"): for facets and recommendations.
    offers_mask     integer NOT NULL,
    seeks_mask      integer NOT NULL,
    fields_mask     integer NOT NULL,
    -- The teaching language codes.
    languages       text[] NOT NULL,
    tags            text[] NOT NULL,
    document        tsvector NOT NULL,
    created_at      timestamptz NOT NULL
);

CREATE INDEX directory_entries_tags ON directory_entries USING gin (tags);
CREATE INDEX directory_entries_document ON directory_entries USING gin (document);
CREATE INDEX directory_entries_name ON directory_entries (sort_name, id);
CREATE INDEX directory_entries_newest ON directory_entries (created_at DESC, id);
CREATE INDEX directory_entries_acronym ON directory_entries (acronym_folded) WHERE acronym_folded IS NOT NULL;
CREATE INDEX directory_entries_schac ON directory_entries (schac);
-- Recommendations score every entry from the masks with an index-only scan, never reading the rows.
CREATE INDEX directory_entries_complement ON directory_entries (offers_mask, seeks_mask, fields_mask) INCLUDE (id);

-- Byte order (COLLATE "C"): the words that start with w are those in [w, w || U+10FFFF).
CREATE TABLE directory_words (
    word text COLLATE "C" PRIMARY KEY CHECK (length(word) BETWEEN 3 AND 60)
);
CREATE INDEX directory_words_trgm ON directory_words USING gin (word gin_trgm_ops);

-- The activities in a fixed order: their bit in offers_mask and seeks_mask.
CREATE FUNCTION accord_activities() RETURNS text[]
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT ARRAY['student_exchange', 'staff_exchange', 'joint_degree', 'double_degree',
                       'collaborative_research', 'coil_virtual_exchange', 'summer_school', 'traineeships'] $$;

CREATE FUNCTION accord_activity_mask(text[]) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(sum(1 << (array_position(accord_activities(), a) - 1)), 0)::integer
          FROM unnest($1) a WHERE array_position(accord_activities(), a) IS NOT NULL $$;

GRANT SELECT ON directory_entries, directory_words TO accord_app;

CREATE FUNCTION accord_fields_mask(jsonb) RETURNS integer
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    AS $$ SELECT coalesce(bit_or(1 << CASE WHEN left(s ->> 'code', 2) = '99' THEN 11 ELSE left(s ->> 'code', 2)::integer END), 0)
          FROM jsonb_array_elements($1) s $$;

CREATE TABLE directory_tag_counts (
    tag     text PRIMARY KEY,
    entries integer NOT NULL CHECK (entries >= 0)
);
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

-- Keeps directory_entries in step with institutions, set-based: statement-level triggers read the
-- changed rows from transition tables, so a bulk import or seed costs a few statements, not a
-- function call per row. SECURITY DEFINER: it writes as the owner whichever role changed the
-- institutions; accord_app cannot write the directory itself.
CREATE FUNCTION accord_directory_sync() RETURNS trigger
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

CREATE TRIGGER institutions_directory_insert AFTER INSERT ON institutions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_directory_sync();
CREATE TRIGGER institutions_directory_update AFTER UPDATE ON institutions
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_directory_sync();
CREATE TRIGGER institutions_directory_delete AFTER DELETE ON institutions
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_directory_sync();

-- The entries of the institutions that exist already.
UPDATE institutions SET version = version WHERE status = 'active';

-- A search query as a tsquery: the folded words, each a prefix (as one types), joined with AND.
-- With p_fuzzy, a word of four or more characters that starts no known word is widened to the three
-- known words most similar to it (trigram similarity): `bolgna` becomes (bolgna:* | bologna | …).
-- Words are split at spaces, punctuation and control characters and each is quoted, so no character
-- of q has meaning to the tsquery syntax. Words of one or two letters ("of", "de", "8") are left out
-- when q has a longer one: as prefixes they match most entries ("of:*" matches every "offers"), and
-- intersecting them cost hundreds of milliseconds for nothing. NULL when q has no word at all.
CREATE FUNCTION accord_directory_tsquery(p_q text, p_fuzzy boolean) RETURNS tsquery
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

-- Text for ts_headline in a JSON string that a client may show as HTML: the only markup in a
-- snippet is the <mark> around matched words.
CREATE FUNCTION accord_html_escape(text) RETURNS text
    LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE
    AS $$ SELECT replace(replace(replace($1, '&', '&amp;'), '<', '&lt;'), '>', '&gt;') $$;
