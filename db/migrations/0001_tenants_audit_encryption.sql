CREATE TABLE "audit_log" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"principal" text NOT NULL,
	"action" text NOT NULL,
	"target" text,
	"upload_id" uuid,
	"bytes" bigint,
	"chunks" integer,
	"client_address" text,
	"request_id" text,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL
);
--> statement-breakpoint
CREATE TABLE "principals" (
	"name" text PRIMARY KEY NOT NULL,
	"max_concurrent_uploads" integer,
	"max_bytes_in_flight" bigint,
	"max_total_bytes" bigint,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "principals_quotas_check" CHECK ("principals"."max_concurrent_uploads" >= 0 AND "principals"."max_bytes_in_flight" >= 0 AND "principals"."max_total_bytes" >= 0)
);
--> statement-breakpoint
ALTER TABLE "api_keys" ADD COLUMN "admin" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "uploads" ADD COLUMN "encryption" jsonb;--> statement-breakpoint
CREATE INDEX "audit_log_at_idx" ON "audit_log" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_log_principal_idx" ON "audit_log" USING btree ("principal","id");--> statement-breakpoint
CREATE INDEX "audit_log_target_idx" ON "audit_log" USING btree ("target","id");