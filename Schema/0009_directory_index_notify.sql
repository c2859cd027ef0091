-- 0009_directory_index_notify.sql: tell the servers' in-memory directory index what changed.
--
-- Each server keeps an index of the directory in memory (Sources/Directory/DirectoryIndex.swift:
-- the lexemes of every entry's document, its tags and its student count) and answers the text
-- matching and the facets of a search from it. These statement-level triggers number every
-- statement that changes directory_entries (directory_version, bumped in the changing transaction,
-- so the number is taken in commit order and a rolled-back change takes none) and notify
-- `accord_directory` with `version:ids` — the ids the statement inserted, changed or removed,
-- comma-separated — or `version:*` when it touched more than 200 (an import, a seed): the index
-- then reads those entries again, or everything. Whichever program makes the change (a server, the
-- CLI, psql) the notification is sent on commit, and only then.
--
-- A search reads directory_version in its first round trip and uses the index only if the index
-- has applied that version: a search never misses a change committed before it began, on any
-- server, even before the notification has arrived.

CREATE TABLE directory_version (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    version  bigint NOT NULL
);
INSERT INTO directory_version (version) VALUES (0);
GRANT SELECT ON directory_version TO accord_app;

-- SECURITY DEFINER: it bumps directory_version as the owner, whoever changed the entries.
CREATE FUNCTION accord_directory_notify() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    changed integer;
    ids text;
    next_version bigint;
BEGIN
    IF TG_OP = 'DELETE' THEN
        SELECT count(*), string_agg(id::text, ',') INTO changed, ids FROM (SELECT id FROM old_rows LIMIT 201) x;
    ELSE
        SELECT count(*), string_agg(id::text, ',') INTO changed, ids FROM (SELECT id FROM new_rows LIMIT 201) x;
    END IF;
    IF changed > 0 THEN
        UPDATE directory_version SET version = version + 1 RETURNING version INTO next_version;
        PERFORM pg_notify('accord_directory', next_version || ':' || CASE WHEN changed > 200 THEN '*' ELSE ids END);
    END IF;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION accord_directory_notify() FROM PUBLIC;

CREATE TRIGGER directory_entries_notify_insert AFTER INSERT ON directory_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_directory_notify();
CREATE TRIGGER directory_entries_notify_update AFTER UPDATE ON directory_entries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_directory_notify();
CREATE TRIGGER directory_entries_notify_delete AFTER DELETE ON directory_entries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION accord_directory_notify();
