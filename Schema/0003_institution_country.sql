-- 0003_institution_country.sql: an institution's country must be a real ISO 3166-1 code.
ALTER TABLE institutions
    ADD CONSTRAINT institutions_country_fkey FOREIGN KEY (country) REFERENCES countries (code);
