"""Object storage (S3 through boto3 against any endpoint) and the local report archive."""
