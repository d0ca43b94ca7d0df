//! S3 object store: streaming multipart writer and reader, manifests, catalog, store check.
