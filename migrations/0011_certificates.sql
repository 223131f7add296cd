CREATE TABLE "ca_certificates" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"cert" text NOT NULL,
	"cert_digest" text NOT NULL,
	"tags" text[],
	CONSTRAINT "ca_certificates_cert_digest_unique" UNIQUE("cert_digest")
);
--> statement-breakpoint
CREATE TABLE "certificates" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"cert" text NOT NULL,
	"key" text NOT NULL,
	"cert_alt" text,
	"key_alt" text,
	"tags" text[],
	"not_after" bigint
);
--> statement-breakpoint
CREATE TABLE "snis" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"name" text NOT NULL,
	"certificate_id" uuid NOT NULL,
	"tags" text[],
	CONSTRAINT "snis_name_unique" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "snis" ADD CONSTRAINT "snis_certificate_id_certificates_id_fk" FOREIGN KEY ("certificate_id") REFERENCES "public"."certificates"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "certificates_not_after_idx" ON "certificates" USING btree ("not_after");--> statement-breakpoint
CREATE INDEX "snis_certificate_id_idx" ON "snis" USING btree ("certificate_id");