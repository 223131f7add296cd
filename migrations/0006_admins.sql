CREATE TABLE "admins" (
	"id" uuid PRIMARY KEY NOT NULL,
	"created_at" integer NOT NULL,
	"username" text NOT NULL,
	"role" text NOT NULL,
	"token_hash" text NOT NULL,
	"token_prefix" text NOT NULL,
	"expires_at" bigint,
	CONSTRAINT "admins_username_unique" UNIQUE("username"),
	CONSTRAINT "admins_token_hash_unique" UNIQUE("token_hash")
);
