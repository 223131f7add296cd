CREATE TABLE "audit_log" (
	"seq" bigint PRIMARY KEY NOT NULL,
	"created_at" bigint NOT NULL,
	"request_id" text NOT NULL,
	"admin_id" uuid,
	"admin_username" text,
	"token_prefix" text,
	"method" text NOT NULL,
	"path" text NOT NULL,
	"entity_type" text NOT NULL,
	"entity_id" text NOT NULL,
	"change" jsonb,
	"config_version" bigint NOT NULL,
	"client_ip" text NOT NULL,
	"prev_hash" text NOT NULL,
	"hash" text NOT NULL
);
--> statement-breakpoint
ALTER TABLE "admins" ADD COLUMN "tags" text[];--> statement-breakpoint
CREATE INDEX "audit_log_created_at_idx" ON "audit_log" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "audit_log_entity_idx" ON "audit_log" USING btree ("entity_type","entity_id");--> statement-breakpoint
CREATE INDEX "audit_log_admin_id_idx" ON "audit_log" USING btree ("admin_id");