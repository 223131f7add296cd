CREATE TABLE "acls" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"consumer_id" uuid NOT NULL,
	"group" text NOT NULL,
	"tags" text[],
	"cache_key" text NOT NULL,
	CONSTRAINT "acls_cache_key_unique" UNIQUE("cache_key")
);
--> statement-breakpoint
CREATE TABLE "basicauth_credentials" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"consumer_id" uuid NOT NULL,
	"username" text NOT NULL,
	"password" text NOT NULL,
	"tags" text[],
	CONSTRAINT "basicauth_credentials_username_unique" UNIQUE("username")
);
--> statement-breakpoint
CREATE TABLE "consumers" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"username" text,
	"custom_id" text,
	"tags" text[],
	CONSTRAINT "consumers_username_unique" UNIQUE("username"),
	CONSTRAINT "consumers_custom_id_unique" UNIQUE("custom_id")
);
--> statement-breakpoint
CREATE TABLE "jwt_secrets" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"consumer_id" uuid NOT NULL,
	"key" text NOT NULL,
	"secret" text,
	"rsa_public_key" text,
	"algorithm" text NOT NULL,
	"tags" text[],
	CONSTRAINT "jwt_secrets_key_unique" UNIQUE("key")
);
--> statement-breakpoint
CREATE TABLE "keyauth_credentials" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"consumer_id" uuid NOT NULL,
	"key_hash" text NOT NULL,
	"key_prefix" text NOT NULL,
	"expires_at" integer,
	"tags" text[],
	CONSTRAINT "keyauth_credentials_key_hash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
CREATE TABLE "plugins" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"updated_at" integer NOT NULL,
	"name" text NOT NULL,
	"instance_name" text,
	"config" jsonb NOT NULL,
	"service_id" uuid,
	"route_id" uuid,
	"consumer_id" uuid,
	"protocols" text[] NOT NULL,
	"enabled" boolean NOT NULL,
	"tags" text[],
	"cache_key" text NOT NULL,
	CONSTRAINT "plugins_instance_name_unique" UNIQUE("instance_name"),
	CONSTRAINT "plugins_cache_key_unique" UNIQUE("cache_key")
);
--> statement-breakpoint
ALTER TABLE "acls" ADD CONSTRAINT "acls_consumer_id_consumers_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."consumers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "basicauth_credentials" ADD CONSTRAINT "basicauth_credentials_consumer_id_consumers_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."consumers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "jwt_secrets" ADD CONSTRAINT "jwt_secrets_consumer_id_consumers_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."consumers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "keyauth_credentials" ADD CONSTRAINT "keyauth_credentials_consumer_id_consumers_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."consumers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plugins" ADD CONSTRAINT "plugins_service_id_services_id_fk" FOREIGN KEY ("service_id") REFERENCES "public"."services"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plugins" ADD CONSTRAINT "plugins_route_id_routes_id_fk" FOREIGN KEY ("route_id") REFERENCES "public"."routes"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "plugins" ADD CONSTRAINT "plugins_consumer_id_consumers_id_fk" FOREIGN KEY ("consumer_id") REFERENCES "public"."consumers"("id") ON DELETE cascade ON UPDATE no action;