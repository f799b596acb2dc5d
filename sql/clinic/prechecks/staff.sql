\set ON_ERROR_STOP 1

-- Prechecks (read-only) for the v2 -> v3 rebuild of clinic.staff, which
-- lower-cases every login and accepts only the known roles. Every row
-- returned is a problem; both statements run on any version.

-- logins that become equal once lower-cased (v3: UNIQUE and lower-case)
SELECT lower(s.login) AS login_in_v3,
       string_agg(s.login || ' (id ' || s.id || ')', ', ' ORDER BY s.id) AS colliding_logins
  FROM clinic.staff AS s
 GROUP BY lower(s.login)
HAVING count(*) > 1;

-- roles v3 does not know
SELECT s.id AS staff_id,
       s.login,
       s.role AS unknown_role
  FROM clinic.staff AS s
 WHERE s.role NOT IN ('physician', 'nurse', 'clerk', 'admin', 'system')
 ORDER BY s.id;
