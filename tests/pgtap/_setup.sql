-- Included by every pgTAP file (\ir), after plan(): pgTAP keeps its bookkeeping in temp
-- tables created by the superuser; grant them so assertions still work under SET ROLE.
GRANT ALL ON ALL TABLES IN SCHEMA pg_temp TO PUBLIC;
GRANT ALL ON ALL SEQUENCES IN SCHEMA pg_temp TO PUBLIC;
