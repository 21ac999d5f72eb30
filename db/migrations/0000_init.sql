CREATE TABLE "api_keys" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"principal" text NOT NULL,
	"key_hash" text NOT NULL,
	"key_prefix" text NOT NULL,
	"label" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_keys_key_hash_unique" UNIQUE("key_hash")
);
--> statement-breakpoint
CREATE TABLE "chunks" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"upload_id" uuid NOT NULL,
	"chunk_index" integer NOT NULL,
	"s3_key" text NOT NULL,
	"status" text DEFAULT 'PENDING' NOT NULL,
	"size" bigint,
	"etag" text,
	"md5" text,
	"sha256" text,
	"retry_count" integer DEFAULT 0 NOT NULL,
	"lease_expires_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "chunks_upload_chunk_unique" UNIQUE("upload_id","chunk_index"),
	CONSTRAINT "chunks_status_check" CHECK ("chunks"."status" IN ('PENDING', 'PRESIGNED', 'UPLOADED', 'FAILED')),
	CONSTRAINT "chunks_chunk_index_check" CHECK ("chunks"."chunk_index" >= 0),
	CONSTRAINT "chunks_retry_count_check" CHECK ("chunks"."retry_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE "idempotency_keys" (
	"principal" text NOT NULL,
	"key" text NOT NULL,
	"scope" text NOT NULL,
	"request_hash" text NOT NULL,
	"response_status" integer,
	"response_body" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "idempotency_keys_principal_key_pk" PRIMARY KEY("principal","key"),
	CONSTRAINT "idempotency_keys_key_length_check" CHECK (char_length("idempotency_keys"."key") BETWEEN 1 AND 255)
);
--> statement-breakpoint
CREATE TABLE "uploads" (
	"id" uuid PRIMARY KEY NOT NULL,
	"principal" text NOT NULL,
	"file_name" text NOT NULL,
	"file_size" bigint NOT NULL,
	"chunk_size" bigint NOT NULL,
	"total_chunks" integer NOT NULL,
	"content_type" text DEFAULT 'application/octet-stream' NOT NULL,
	"status" text DEFAULT 'INITIATED' NOT NULL,
	"object_key" text NOT NULL,
	"s3_upload_id" text,
	"checksum_sha256" text,
	"etag" text,
	"metadata" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"failure_reason" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"completed_at" timestamp with time zone,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "uploads_status_check" CHECK ("uploads"."status" IN ('INITIATED', 'IN_PROGRESS', 'COMPLETING', 'COMPLETED', 'ABORTED', 'FAILED')),
	CONSTRAINT "uploads_file_size_check" CHECK ("uploads"."file_size" >= 0),
	CONSTRAINT "uploads_chunk_size_check" CHECK ("uploads"."chunk_size" > 0),
	CONSTRAINT "uploads_total_chunks_check" CHECK ("uploads"."total_chunks" >= 1)
);
--> statement-breakpoint
ALTER TABLE "chunks" ADD CONSTRAINT "chunks_upload_id_uploads_id_fk" FOREIGN KEY ("upload_id") REFERENCES "public"."uploads"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "api_keys_principal_idx" ON "api_keys" USING btree ("principal");--> statement-breakpoint
CREATE INDEX "chunks_lease_idx" ON "chunks" USING btree ("lease_expires_at") WHERE "chunks"."status" = 'PRESIGNED';--> statement-breakpoint
CREATE INDEX "idempotency_keys_expires_idx" ON "idempotency_keys" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "uploads_principal_created_idx" ON "uploads" USING btree ("principal","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
CREATE INDEX "uploads_status_expires_idx" ON "uploads" USING btree ("status","expires_at");