CREATE TABLE "config_state" (
	"id" integer PRIMARY KEY NOT NULL,
	"version" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "config_versions" (
	"version" bigint PRIMARY KEY NOT NULL,
	"hash" text NOT NULL,
	"built_at" bigint NOT NULL,
	"size_bytes" integer NOT NULL,
	"snapshot" "bytea" NOT NULL
);
--> statement-breakpoint
CREATE TABLE "clustering_data_planes" (
	"id" uuid PRIMARY KEY NOT NULL,
	"hostname" text NOT NULL,
	"ip" text NOT NULL,
	"version" text NOT NULL,
	"config_version" bigint NOT NULL,
	"config_hash" text NOT NULL,
	"last_error" text,
	"status" text NOT NULL,
	"started_at" bigint NOT NULL,
	"last_seen" integer NOT NULL,
	"updated_at" integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE "routes" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"name" text,
	"protocols" text[] NOT NULL,
	"methods" text[],
	"hosts" text[],
	"paths" text[],
	"headers" jsonb,
	"snis" text[],
	"sources" jsonb,
	"destinations" jsonb,
	"https_redirect_status_code" integer NOT NULL,
	"regex_priority" integer NOT NULL,
	"strip_path" boolean NOT NULL,
	"path_handling" text NOT NULL,
	"preserve_host" boolean NOT NULL,
	"request_buffering" boolean NOT NULL,
	"response_buffering" boolean NOT NULL,
	"service_id" uuid,
	"tags" text[],
	CONSTRAINT "routes_name_unique" UNIQUE("name")
);
--> statement-breakpoint
CREATE TABLE "services" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"name" text,
	"protocol" text NOT NULL,
	"host" text NOT NULL,
	"port" integer NOT NULL,
	"path" text,
	"retries" integer NOT NULL,
	"connect_timeout" integer NOT NULL,
	"write_timeout" integer NOT NULL,
	"read_timeout" integer NOT NULL,
	"enabled" boolean NOT NULL,
	"tls_verify" boolean,
	"tls_verify_depth" integer,
	"ca_certificates" uuid[],
	"client_certificate_id" uuid,
	"tags" text[],
	CONSTRAINT "services_name_unique" UNIQUE("name")
);
--> statement-breakpoint
ALTER TABLE "routes" ADD CONSTRAINT "routes_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE restrict ON UPDATE no action;