"""The local S3: objects as files under one root, served over the S3 REST-XML protocol (store.py, app.py)."""
