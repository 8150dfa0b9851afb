"""Authentication (passwords, OAuth2 tokens, sessions) and the acting principal."""
