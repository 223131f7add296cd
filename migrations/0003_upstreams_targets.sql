CREATE TABLE "targets" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"upstream_id" uuid NOT NULL,
	"target" text NOT NULL,
	"weight" integer NOT NULL,
	"tags" text[],
	"cache_key" text NOT NULL,
	CONSTRAINT "targets_cache_key_unique" UNIQUE("cache_key")
);
--> statement-breakpoint
CREATE TABLE "upstreams" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"name" text NOT NULL,
	"algorithm" text NOT NULL,
	"hash_on" text NOT NULL,
	"hash_fallback" text NOT NULL,
	"hash_on_header" text,
	"hash_fallback_header" text,
	"hash_on_cookie" text,
	"hash_on_cookie_path" text NOT NULL,
	"hash_on_query_arg" text,
	"hash_fallback_query_arg" text,
	"hash_on_uri_capture" text,
	"hash_fallback_uri_capture" text,
	"slots" integer NOT NULL,
	"host_header" text,
	"client_certificate_id" uuid,
	"use_srv_name" boolean NOT NULL,
	"healthchecks" jsonb NOT NULL,
	"circuit_breaker" jsonb,
	"status_retries" jsonb,
	"fallback_response" jsonb,
	"tags" text[],
	CONSTRAINT "upstreams_name_unique" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "targets" ADD CONSTRAINT "targets_upstream_id_upstreams_id_fk" FOREIGN KEY ("upstream_id") REFERENCES "public"."upstreams"("id") ON DELETE cascade ON UPDATE no action;