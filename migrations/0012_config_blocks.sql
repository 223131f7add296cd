CREATE TABLE "config_blocks" (
	"digest" text PRIMARY KEY NOT NULL,
	"bytes" "bytea" NOT NULL
);
--> statement-breakpoint
ALTER TABLE "config_versions" ALTER COLUMN "snapshot" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "config_versions" ADD COLUMN "parts" text[];--> statement-breakpoint
ALTER TABLE "config_blocks" ALTER COLUMN "bytes" SET STORAGE EXTERNAL;--> statement-breakpoint
ALTER TABLE "config_versions" ADD CONSTRAINT "config_versions_stored" CHECK ("snapshot" IS NOT NULL OR "parts" IS NOT NULL);
