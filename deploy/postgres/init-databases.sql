-- Run once by the postgres image, on the first start with an empty volume
-- (mounted into /docker-entrypoint-initdb.d by compose.yaml).
-- Each service owns its own database; all belong to the POSTGRES_USER (qcdc).
CREATE DATABASE plans OWNER qcdc;
CREATE DATABASE reports OWNER qcdc;
CREATE DATABASE notify OWNER qcdc;
