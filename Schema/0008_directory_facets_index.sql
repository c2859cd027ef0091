-- 0008_directory_facets_index.sql: searches without q from indexes of the compact columns, not the rows.
--
-- Counting the facets of `region=155&type=…` means reading every entry that fails at most one of the
-- filters: a quarter of a million wide rows (names, descriptions, the text document) for a few
-- compact columns each, 4.6 s over a million entries. Every column the count needs is in this index,
-- so PostgreSQL answers from an index-only scan (about a tenth of the bytes, no heap page per entry):
-- 0.8 s. DirectoryService.FilterPlan.forFacets writes such a search's filters on these columns so
-- that the index serves it; country leads, so a country or region filter narrows the scan.
CREATE INDEX directory_entries_facets ON directory_entries (country)
    INCLUDE (type, tier, student_count, offers_mask, seeks_mask, fields_mask, languages, services);

-- A page in name order without q: the name index carries the same compact columns, so the entries
-- that fail the filters are passed over in the index (an index-only scan) and only the page's rows
-- are read (DirectoryService.namePageStatement). It replaces the plain name index, whose key it keeps.
CREATE INDEX directory_entries_name_facets ON directory_entries (sort_name, id)
    INCLUDE (country, type, tier, student_count, offers_mask, seeks_mask, fields_mask, languages, services);
DROP INDEX directory_entries_name;
