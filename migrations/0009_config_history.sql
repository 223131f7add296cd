ALTER TABLE "config_versions" ADD COLUMN "changed_by" text[];--> statement-breakpoint
ALTER TABLE "config_versions" ADD COLUMN "summary" text;--> statement-breakpoint
CREATE INDEX "audit_log_config_version_idx" ON "audit_log" USING btree ("config_version");