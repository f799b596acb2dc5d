-- clinic v1 -- realistic data of a chosen size, for demos, tests and benchmarks.
--
-- Run once, on a fresh v1 database (after v1/schema.sql and v1/seed.sql):
--
--     SET pgstep.patients = '100000';     -- optional; default 100000
--     \i generate.sql
--
-- Set-based (generate_series, no loops) and reproducible: the random
-- generator is seeded and the statements run in one process, so the same
-- size gives the same rows every time. About 45 staff are added (50 in all),
-- 0 to 8 encounters per patient (4 on average) and a realistic mess in
-- encounter.weight ('72,5 kg', '', NULL ...) -- every value of which the
-- v1 -> v2 conversion reads (prechecks/weights.sql finds nothing).

\set ON_ERROR_STOP 1
\echo clinic v1: generating staff, patients and encounters (size: SET pgstep.patients, default 100000)

-- A parallel plan would interleave random() draws differently on each run;
-- JIT only costs time for these one-off statements.
SET max_parallel_workers_per_gather = 0;
SET jit = off;
SET work_mem = '64MB';

DO $$
BEGIN
    IF EXISTS (SELECT FROM clinic.patient) THEN
        RAISE EXCEPTION 'generate.sql: clinic.patient is not empty; run it on a fresh v1 database';
    END IF;
    IF coalesce(nullif(current_setting('pgstep.patients', true), ''), '100000')::integer < 1 THEN
        RAISE EXCEPTION 'generate.sql: pgstep.patients must be at least 1';
    END IF;
    PERFORM setseed(0.4711);
END
$$;

CREATE TEMPORARY TABLE gen_names ON COMMIT PRESERVE ROWS AS
SELECT ARRAY['Anna', 'Maria', 'Sophie', 'Emma', 'Lena', 'Hannah', 'Katharina', 'Julia', 'Laura',
             'Sarah', 'Lea', 'Mia', 'Ursula', 'Renate', 'Gisela', 'Monika', 'Elif', 'Ayşe',
             'Zeynep', 'Agnieszka', 'Katarzyna', 'Olena', 'Natalia', 'Giulia', 'Francesca',
             'Amara', 'Ngozi', 'Chiara', 'Ingrid', 'Sabine', 'Petra', 'Helga', 'Mai', 'Linh',
             'Fatima', 'Yasmin', 'Siobhán', 'Chloé', 'Zoë', 'Marie-Luise'] AS female,
       ARRAY['Lukas', 'Leon', 'Paul', 'Jonas', 'Felix', 'Maximilian', 'Thomas', 'Michael',
             'Andreas', 'Stefan', 'Peter', 'Klaus', 'Jürgen', 'Wolfgang', 'Mehmet', 'Mustafa',
             'Emre', 'Piotr', 'Tomasz', 'Andriy', 'Oleksandr', 'Marco', 'Luca', 'Giuseppe',
             'Chidi', 'Emeka', 'Tunde', 'Minh', 'Duc', 'Ahmed', 'Omar', 'Karim', 'Seán',
             'François', 'José', 'Björn', 'Lars', 'Nikolaos', 'Hans-Peter', 'Karl-Heinz'] AS male,
       ARRAY['Müller', 'Schmidt', 'Schneider', 'Fischer', 'Weber', 'Meyer', 'Wagner', 'Becker',
             'Schulz', 'Hoffmann', 'Schäfer', 'Koch', 'Bauer', 'Richter', 'Klein', 'Wolf',
             'Schröder', 'Neumann', 'Schwarz', 'Zimmermann', 'Braun', 'Krüger', 'Hofmann',
             'Hartmann', 'Lange', 'Schmitt', 'Werner', 'Krause', 'Meier', 'Lehmann', 'Yılmaz',
             'Kaya', 'Demir', 'Şahin', 'Çelik', 'Öztürk', 'Kowalski', 'Nowak', 'Wiśniewski',
             'Wójcik', 'Kovalenko', 'Shevchenko', 'Bondarenko', 'Rossi', 'Russo', 'Ferrari',
             'Esposito', 'Bianchi', 'Okafor', 'Adeyemi', 'Okonkwo', 'Nguyen', 'Tran', 'Le',
             'Pham', 'Haddad', 'Khoury', 'Mansour', 'O''Brien', 'O''Connor', 'MacLeod',
             'García', 'Fernández', 'López', 'Dubois', 'Lefèvre', 'Johansson', 'Andersen',
             'Papadopoulos', 'Georgiou', 'van der Berg', 'de Vries', 'Müller-Lüdenscheidt',
             'Schulze-Delitzsch', 'von Stein', 'Ivanova', 'Smirnov', 'Horváth', 'Novák',
             'Dvořák'] AS last,
       ARRAY['check-up', 'influenza', 'common cold', 'back pain', 'vaccination',
             'hypertension follow-up', 'diabetes follow-up', 'blood test', 'headache',
             'sprained ankle', 'skin rash', 'sore throat', 'gastroenteritis', 'sick note',
             'prescription renewal', 'allergy consultation', 'knee pain', 'insomnia',
             'dizziness', 'well-child visit', 'pregnancy check', 'wound care',
             'suture removal', 'ECG', 'travel advice'] AS reasons,
       ARRAY['BP 128/82; pulse 72', 'Pt says "much better"; continue meds',
             'Referred to cardiology; ECG attached', 'Patient''s mother present',
             'Vaccinated (influenza); no reaction after 15 min', 'Labs ordered: CBC, CRP, HbA1c',
             'Rx: ibuprofen 400 mg, max. 3x/day', 'Follow-up in 2 weeks',
             'Advised rest & fluids', 'No fever. Lungs clear.', 'Wound clean, dry; dressing changed',
             'Sick note 3 days', 'Discussed diet; weight trend OK', 'Interpreter (Turkish) present',
             'Called back 14:30 -- no answer', 'see letter from Dr. Weber 12/03',
             -- v1 had no place for allergies: v1 -> v2 migrates these into clinic.allergy
             'Allergy: penicillin (rash)', 'Allergic to peanuts!', 'Known allergy: house dust mite',
             'ALLERGIC TO ASPIRIN; use paracetamol', 'NKDA (no known drug allergies)'] AS notes;

-- staff: 45 more accounts (50 in all); logins ASCII, first.last
INSERT INTO clinic.staff (login, full_name, role)
SELECT lower(translate(fn || '.' || ln, 'ÄÖÜŞÇäöüßéèëçñáóíúłńśźżşığřčšžěåø ''', 'AOUSCaouseeecnaoiulnszzsigrcszeao_')),
       CASE WHEN i <= 12 THEN 'Dr. ' ELSE '' END || fn || ' ' || ln,
       CASE WHEN i <= 12 THEN 'physician' WHEN i <= 32 THEN 'nurse' ELSE 'clerk' END
  FROM gen_names n,
       generate_series(1, 45) AS i,
       LATERAL (SELECT CASE WHEN i % 2 = 0 THEN n.female[1 + i % array_length(n.female, 1)] ELSE n.male[1 + i % array_length(n.male, 1)] END AS fn,
                       n.last[1 + (i * 7) % array_length(n.last, 1)] AS ln) AS nm;

-- patients
INSERT INTO clinic.patient (first_name, last_name, date_of_birth, sex, phone, created_at)
SELECT CASE WHEN lower(g.sex) = 'f' THEN n.female[1 + floor(g.r_first * array_length(n.female, 1))::int]
            WHEN lower(g.sex) = 'm' THEN n.male[1 + floor(g.r_first * array_length(n.male, 1))::int]
            WHEN g.r_first < 0.5 THEN n.female[1 + floor(g.r_first * 2 * array_length(n.female, 1))::int]
            ELSE n.male[1 + floor((g.r_first - 0.5) * 2 * array_length(n.male, 1))::int] END,
       n.last[1 + floor(g.r_last * array_length(n.last, 1))::int],
       g.dob,
       g.sex,
       CASE WHEN g.r_phone < 0.15 THEN NULL
            WHEN g.r_phone < 0.55 THEN '+49 30 ' || (1000000 + floor(g.r_phone * 8999999))::bigint
            WHEN g.r_phone < 0.85 THEN '0151 ' || (10000000 + floor(g.r_phone * 89999999))::bigint
            ELSE '030/' || (200000 + floor(g.r_phone * 799999))::bigint END,
       -- registered between 2005 (or birth) and mid-2025, during office hours
       date_trunc('day', greatest(g.dob::timestamp, timestamp '2005-01-01')
                         + g.r_reg * (timestamp '2025-06-30' - greatest(g.dob::timestamp, timestamp '2005-01-01')))
           + interval '7 hours 30 minutes' + floor(g.r_time * 600) * interval '1 minute'
  FROM gen_names n,
       LATERAL (SELECT random() AS r_sex, random() AS r_first, random() AS r_last,
                       date '1935-01-01' + floor(random() * 90 * 365.25)::int AS dob,
                       random() AS r_phone, random() AS r_reg, random() AS r_time
                  FROM generate_series(1, coalesce(nullif(current_setting('pgstep.patients', true), ''),
                                                   '100000')::integer)) AS r,
       LATERAL (SELECT CASE WHEN r.r_sex < 0.045 THEN 'F'           -- the v1 client's mess
                            WHEN r.r_sex < 0.490 THEN 'f'
                            WHEN r.r_sex < 0.535 THEN 'M'
                            WHEN r.r_sex < 0.970 THEN 'm'
                            WHEN r.r_sex < 0.980 THEN 'x'
                            WHEN r.r_sex < 0.990 THEN 'u'
                            ELSE NULL END AS sex,
                       r.*) AS g;

-- encounters: 0..8 per patient (4 on average), after registration, office hours.
-- Loaded the way pg_restore does it: foreign keys and secondary indexes are
-- dropped, the rows inserted, then keys and indexes added back (one pass each
-- instead of 400,000 row-by-row checks: 2.5 s instead of 5.5 s at 100k
-- patients). The definitions below must match v1/schema.sql exactly.
BEGIN;
ALTER TABLE clinic.encounter
    DROP CONSTRAINT encounter_patient_id_fkey,
    DROP CONSTRAINT encounter_staff_id_fkey;
DROP INDEX clinic.encounter_patient_idx, clinic.encounter_started_idx;

INSERT INTO clinic.encounter (patient_id, staff_id, started_at, reason, weight, notes)
SELECT e.patient_id,
       CASE WHEN e.r_staff < 0.02 THEN NULL
            ELSE s.ids[1 + floor(e.r_staff * array_length(s.ids, 1))::int] END,
       e.started_at,
       CASE WHEN e.r_reason < 0.03 THEN NULL
            ELSE n.reasons[1 + floor(e.r_reason * array_length(n.reasons, 1))::int] END,
       -- what the v1 client let people type (every form is read by v1-v2's parse_weight)
       CASE WHEN e.r_wfmt < 0.25 THEN NULL
            WHEN e.r_wfmt < 0.28 THEN ''
            WHEN e.r_wfmt < 0.29 THEN '  '
            WHEN e.r_wfmt < 0.74 THEN to_char(e.kg, 'FM990.0')
            WHEN e.r_wfmt < 0.78 THEN to_char(e.kg, 'FM990.00')
            WHEN e.r_wfmt < 0.84 THEN replace(to_char(e.kg, 'FM990.0'), '.', ',')
            WHEN e.r_wfmt < 0.90 THEN replace(to_char(e.kg, 'FM990.0'), '.', ',') || ' kg'
            WHEN e.r_wfmt < 0.94 THEN to_char(round(e.kg), 'FM990') || ' kg'
            WHEN e.r_wfmt < 0.96 THEN to_char(round(e.kg), 'FM990') || 'kg'
            WHEN e.r_wfmt < 0.97 THEN to_char(e.kg, 'FM990.0') || ' KG'
            WHEN e.r_wfmt < 0.99 THEN ' ' || to_char(e.kg, 'FM990.0') || ' '
            ELSE to_char(round(e.kg), 'FM990') END,
       CASE WHEN e.r_notes < 0.6 THEN NULL
            ELSE n.notes[1 + floor((e.r_notes - 0.6) / 0.4 * array_length(n.notes, 1))::int] END
  FROM gen_names n,
       (SELECT array_agg(id ORDER BY id) AS ids
          FROM clinic.staff WHERE role IN ('physician', 'nurse')) AS s,
       LATERAL (SELECT p.id AS patient_id,
                       date_trunc('day', p.created_at + random() * (timestamp '2025-06-30' - p.created_at))
                           + interval '8 hours' + floor(random() * 600) * interval '1 minute' AS started_at,
                       p.date_of_birth,
                       random() AS r_staff, random() AS r_reason, random() AS r_wfmt, random() AS r_notes,
                       random() AS r_kg
                  FROM clinic.patient p,
                       generate_series(1, (p.id * 7919 % 9)::integer) AS v(n)) AS x,
       -- a plausible weight for the age at the encounter
       LATERAL (SELECT x.*,
                       round(CASE WHEN age_y < 1 THEN 3.3 + x.r_kg * 6
                                  WHEN age_y < 18 THEN 8 + age_y * 3.1 + x.r_kg * 12
                                  ELSE 52 + x.r_kg * 55 END::numeric, 1) AS kg
                  FROM (SELECT extract(year FROM age(x.started_at, x.date_of_birth::timestamp))::int AS age_y) AS a
               ) AS e
 ORDER BY e.patient_id, e.started_at;

ALTER TABLE clinic.encounter
    ADD CONSTRAINT encounter_patient_id_fkey FOREIGN KEY (patient_id) REFERENCES clinic.patient (id),
    ADD CONSTRAINT encounter_staff_id_fkey FOREIGN KEY (staff_id) REFERENCES clinic.staff (id);
CREATE INDEX encounter_patient_idx ON clinic.encounter (patient_id);
CREATE INDEX encounter_started_idx ON clinic.encounter (started_at);
COMMIT;

RESET max_parallel_workers_per_gather;
RESET jit;
RESET work_mem;
DROP TABLE gen_names;

ANALYZE clinic.staff;
ANALYZE clinic.patient;
ANALYZE clinic.encounter;
