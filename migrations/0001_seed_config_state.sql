-- The single config-version row every write transaction bumps.
INSERT INTO "config_state" ("id", "version") VALUES (1, 0) ON CONFLICT DO NOTHING;
