"""Request authentication for the local AWS: the access key pair it issues and server-side SigV4 verification."""
