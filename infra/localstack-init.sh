#!/bin/sh
# LocalStack ready hook (docker-compose.yml): the bucket and a CORS rule exposing ETag.
set -e
awslocal s3api create-bucket --bucket conveyor 2>/dev/null || true
awslocal s3api put-bucket-cors --bucket conveyor --cors-configuration '{
  "CORSRules": [{
    "AllowedOrigins": ["*"],
    "AllowedMethods": ["GET", "PUT", "POST", "HEAD", "DELETE"],
    "AllowedHeaders": ["*"],
    "ExposeHeaders": ["ETag", "Content-Range", "Accept-Ranges", "Content-Length"],
    "MaxAgeSeconds": 3600
  }]
}'
